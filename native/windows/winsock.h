// Socket set-up for the IOCP reactor: addresses, overlapped sockets, the
// Winsock extension functions, and how each socket reports completions.
#pragma once

#include <winsock2.h>
#include <mswsock.h>
#include <ws2tcpip.h>

#include <cstdint>

#include "../address.h"
#include "../socket.h"

namespace ringport {

// The Winsock extensions the reactor is built on. They belong to the
// provider, not to one socket, so they are looked up once per family.
struct winsock_ext {
  LPFN_ACCEPTEX accept_ex = nullptr;
  LPFN_CONNECTEX connect_ex = nullptr;
  LPFN_GETACCEPTEXSOCKADDRS get_accept_ex_sockaddrs = nullptr;
};

// Fills `ext` through a socket of `family`. Returns 0 or -errno.
int load_winsock_ext(int family, winsock_ext* ext);

// An overlapped, non-inheritable TCP socket. Returns INVALID_SOCKET with
// WSAGetLastError set on failure.
SOCKET open_socket(int family);

// Ties `sock` to `iocp` and puts it in non-blocking mode (the reactor reads
// without a request once a zero-byte receive says data is there). Returns 0
// or -errno. *skip_on_success says whether an overlapped call that succeeds
// at once will post no completion packet (FILE_SKIP_COMPLETION_PORT_ON_SUCCESS).
int attach_socket(SOCKET sock, HANDLE iocp, bool* skip_on_success);

// socket + bind + listen, attached to `iocp`. Returns 0 or -errno; on
// success *out holds the socket and *bound_port the port actually bound.
int open_listener(const char* host, int port, int backlog, HANDLE iocp, SOCKET* out, int* family,
                  bool* skip_on_success, int* bound_port);

}  // namespace ringport
