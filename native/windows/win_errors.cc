#include "win_errors.h"

#include <windows.h>

#include <cerrno>

namespace ringport {

// The errno values below must be the ones node.exe reports in
// os.constants.errno, or JS would name them wrongly. MinGW-w64's <errno.h>
// and the MSVC CRT that Node is built with agree; these checks keep it so.
static_assert(EADDRINUSE == 100 && EADDRNOTAVAIL == 101 && ECANCELED == 105 && ECONNABORTED == 106 &&
                  ECONNREFUSED == 107 && ECONNRESET == 108 && EHOSTUNREACH == 110 && ENETUNREACH == 118 &&
                  ENOBUFS == 119 && ENOTCONN == 126 && ETIMEDOUT == 138,
              "errno values differ from the MSVC CRT's, which node.exe's os.constants.errno reports");

namespace {

struct error_row {
  DWORD error;
  int errno_value;
};

// The one table. Winsock reports its own codes (WSAE*, from WSAGetLastError
// and WSAGetOverlappedResult); kernel32 calls and a few completions report
// Win32 codes for the same conditions, so both appear.
const error_row error_table[] = {
    {WSAEADDRINUSE, EADDRINUSE},
    {ERROR_ADDRESS_ALREADY_ASSOCIATED, EADDRINUSE},
    {WSAEADDRNOTAVAIL, EADDRNOTAVAIL},
    {WSAEAFNOSUPPORT, EAFNOSUPPORT},
    {WSAEPFNOSUPPORT, EAFNOSUPPORT},
    {WSAEALREADY, EALREADY},
    {WSAEACCES, EACCES},
    {ERROR_ACCESS_DENIED, EACCES},
    {WSAECONNABORTED, ECONNABORTED},
    {ERROR_CONNECTION_ABORTED, ECONNABORTED},
    {ERROR_REQUEST_ABORTED, ECONNABORTED},
    {WSAECONNREFUSED, ECONNREFUSED},
    {ERROR_CONNECTION_REFUSED, ECONNREFUSED},
    {WSAECONNRESET, ECONNRESET},
    {ERROR_NETNAME_DELETED, ECONNRESET},
    {WSAENETRESET, ECONNRESET},
    {WSAEDISCON, ECONNRESET},
    {WSAEFAULT, EFAULT},
    {WSAEHOSTUNREACH, EHOSTUNREACH},
    {WSAEHOSTDOWN, EHOSTUNREACH},
    {ERROR_HOST_UNREACHABLE, EHOSTUNREACH},
    {WSAEINTR, EINTR},
    {WSAEINVAL, EINVAL},
    {ERROR_INVALID_PARAMETER, EINVAL},
    {WSAEISCONN, EISCONN},
    {WSAEMFILE, EMFILE},
    {ERROR_TOO_MANY_OPEN_FILES, EMFILE},
    {WSAEMSGSIZE, EMSGSIZE},
    {WSAENETDOWN, ENETDOWN},
    {WSASYSNOTREADY, ENETDOWN},
    {WSAENETUNREACH, ENETUNREACH},
    {ERROR_NETWORK_UNREACHABLE, ENETUNREACH},
    {WSAENOBUFS, ENOBUFS},
    {ERROR_NOT_ENOUGH_MEMORY, ENOMEM},
    {ERROR_OUTOFMEMORY, ENOMEM},
    {ERROR_NOT_ENOUGH_QUOTA, ENOMEM},
    {WSAENOPROTOOPT, ENOPROTOOPT},
    {WSAENOTCONN, ENOTCONN},
    {WSAENOTSOCK, ENOTSOCK},
    {ERROR_INVALID_HANDLE, EBADF},
    {WSAEOPNOTSUPP, EOPNOTSUPP},
    {ERROR_NOT_SUPPORTED, ENOTSUP},
    {WSAEPROTONOSUPPORT, EPROTONOSUPPORT},
    {WSAESOCKTNOSUPPORT, EPROTONOSUPPORT},
    {WSAEPROTOTYPE, EPROTOTYPE},
    {WSAESHUTDOWN, EPIPE},
    {ERROR_BROKEN_PIPE, EPIPE},
    {WSAETIMEDOUT, ETIMEDOUT},
    {ERROR_SEM_TIMEOUT, ETIMEDOUT},
    {WSAEWOULDBLOCK, EAGAIN},
    {ERROR_OPERATION_ABORTED, ECANCELED},  // also WSA_OPERATION_ABORTED: a cancelled request
    {WSAEINPROGRESS, EINPROGRESS},
};

}  // namespace

int errno_of(DWORD error) {
  for (const error_row& row : error_table) {
    if (row.error == error) return row.errno_value;
  }
  return EIO;
}

}  // namespace ringport
