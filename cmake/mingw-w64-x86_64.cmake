# Cross-compiles for 64-bit Windows with MinGW-w64 (scripts/build-win.sh).
# The posix-threads compiler (Debian: g++-mingw-w64-x86-64-posix) is the one
# whose libstdc++ has std::thread and friends; the addon links it statically.
set(CMAKE_SYSTEM_NAME Windows)
set(CMAKE_SYSTEM_PROCESSOR x86_64)

set(MINGW_TRIPLET x86_64-w64-mingw32)
set(CMAKE_C_COMPILER ${MINGW_TRIPLET}-gcc-posix)
set(CMAKE_CXX_COMPILER ${MINGW_TRIPLET}-g++-posix)
set(CMAKE_RC_COMPILER ${MINGW_TRIPLET}-windres)
set(MINGW_DLLTOOL ${MINGW_TRIPLET}-dlltool)

# Libraries come from the MinGW sysroot only; headers may also come from the
# host (Node's own include directory carries uv.h for every platform).
set(CMAKE_FIND_ROOT_PATH /usr/${MINGW_TRIPLET})
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE BOTH)
