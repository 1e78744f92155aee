add_library(lsync_warnings INTERFACE)
target_compile_options(lsync_warnings INTERFACE
  $<$<COMPILE_LANGUAGE:CXX>:-Wall -Wextra -Wno-unused-parameter>
  $<$<AND:$<COMPILE_LANGUAGE:CXX>,$<BOOL:${LSYNC_WARNINGS_AS_ERRORS}>>:-Werror>)
