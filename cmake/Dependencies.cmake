# Every third-party dependency is found here, once, so the targets below only link imported targets.

find_package(Torch REQUIRED)
# LibTorch exports its ABI flag (-D_GLIBCXX_USE_CXX11_ABI=...) through TORCH_CXX_FLAGS; every C++ target we
# build must agree with it, so it goes into the global flags rather than onto one target.
set(CMAKE_CXX_FLAGS "${CMAKE_CXX_FLAGS} ${TORCH_CXX_FLAGS}")
message(STATUS "LibTorch ${Torch_VERSION}")

find_package(PkgConfig REQUIRED)
set(_lsync_ffmpeg_modules libavformat libavcodec libavutil libswscale libswresample)
if(LSYNC_FFMPEG_STATIC)
  # pkg_check_modules keeps the --static closure in <prefix>_STATIC_* variables; build an imported target
  # from them so the static archives pull in x264, zlib, libm and pthread.
  pkg_check_modules(FFMPEG REQUIRED ${_lsync_ffmpeg_modules})
  add_library(lsync_ffmpeg INTERFACE)
  target_include_directories(lsync_ffmpeg SYSTEM INTERFACE ${FFMPEG_STATIC_INCLUDE_DIRS})
  target_link_directories(lsync_ffmpeg INTERFACE ${FFMPEG_STATIC_LIBRARY_DIRS})
  target_link_libraries(lsync_ffmpeg INTERFACE ${FFMPEG_STATIC_LIBRARIES})
  target_link_options(lsync_ffmpeg INTERFACE ${FFMPEG_STATIC_LDFLAGS_OTHER})
else()
  pkg_check_modules(FFMPEG REQUIRED IMPORTED_TARGET ${_lsync_ffmpeg_modules})
  add_library(lsync_ffmpeg INTERFACE)
  target_link_libraries(lsync_ffmpeg INTERFACE PkgConfig::FFMPEG)
endif()
message(STATUS "FFmpeg: libavformat ${FFMPEG_libavformat_VERSION} (static: ${LSYNC_FFMPEG_STATIC})")

find_package(CLI11 CONFIG REQUIRED)
find_package(spdlog CONFIG REQUIRED)
find_package(nlohmann_json 3.9 CONFIG REQUIRED)

# CUDA kernels: only when LibTorch itself was built with CUDA (Debian's 1.13 is CPU-only).
if(LSYNC_WITH_CUDA STREQUAL "AUTO")
  if(TARGET torch_cuda OR TARGET c10_cuda OR TORCH_CUDA_LIBRARIES)
    set(LSYNC_WITH_CUDA ON)
  else()
    set(LSYNC_WITH_CUDA OFF)
  endif()
endif()
if(LSYNC_WITH_CUDA)
  include(CheckLanguage)
  check_language(CUDA)
  if(NOT CMAKE_CUDA_COMPILER)
    message(FATAL_ERROR "LibTorch has CUDA but no nvcc was found; set CMAKE_CUDA_COMPILER or -DLSYNC_WITH_CUDA=OFF")
  endif()
  if(NOT DEFINED CMAKE_CUDA_ARCHITECTURES)
    set(CMAKE_CUDA_ARCHITECTURES 80 90)
  endif()
  # One CUDA runtime in the process: LibTorch links the shared libcudart, and CMake's default for targets with
  # CUDA sources (a static cudart copied into the binary) would give our kernels and our event/stream calls a
  # second, separately initialised runtime beside it.
  set(CMAKE_CUDA_RUNTIME_LIBRARY Shared)
  enable_language(CUDA)
  find_package(CUDAToolkit REQUIRED)
endif()
message(STATUS "latentsync CUDA kernels: ${LSYNC_WITH_CUDA}")
