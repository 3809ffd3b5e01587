// Win32 and Winsock errors as the errno values every reactor returns.
#pragma once

#include <winsock2.h>

namespace ringport {

// The positive errno for a Win32 (ERROR_*) or Winsock (WSAE*) error; EIO for
// one the table does not know. JS names it through os.constants.errno, which
// on Windows holds the CRT's values (ECONNREFUSED is 107, not Linux's 111).
int errno_of(DWORD error);

// The negative errno for the calling thread's last Winsock error.
inline int wsa_result() { return -errno_of(static_cast<DWORD>(WSAGetLastError())); }

}  // namespace ringport
