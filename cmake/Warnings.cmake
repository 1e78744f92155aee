add_library(lsync_warnings INTERFACE)
target_compile_options(lsync_warnings INTERFACE
  $<$<COMPILE_LANGUAGE:CXX>:-Wall -Wextra -Wno-unused-parameter>
  $<$<AND:$<COMPILE_LANGUAGE:CXX>,$<BOOL:${LSYNC_WARNINGS_AS_ERRORS}>>:-Werror>)

# Sanitizers apply to our targets only (they link lsync_warnings); LibTorch and FFmpeg stay uninstrumented.
if(LSYNC_SANITIZE)
  target_compile_options(lsync_warnings INTERFACE -fsanitize=${LSYNC_SANITIZE} -fno-omit-frame-pointer)
  target_link_options(lsync_warnings INTERFACE -fsanitize=${LSYNC_SANITIZE})
endif()
