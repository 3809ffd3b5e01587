// The socket calls the connection core makes, the same on every platform.
// native/linux/sockets.cc and native/windows/winsock.cc implement them and
// the build picks one, as mio picks src/sys/unix or src/sys/windows: they
// are platform calls, not a mechanism's, so io_uring and epoll share them.
#pragma once

#ifdef _WIN32
#include <winsock2.h>
#endif

#include <cstdint>

namespace ringport {

#ifdef _WIN32
using socket_t = SOCKET;
constexpr socket_t NO_SOCKET = INVALID_SOCKET;
#else
using socket_t = int;
constexpr socket_t NO_SOCKET = -1;
#endif

// Sends FIN. Returns 0 or -errno.
int socket_shutdown_send(socket_t sock);

// SO_LINGER 0: the close that follows resets the connection instead of
// lingering over what the peer has not taken.
void socket_set_reset(socket_t sock);

void socket_close(socket_t sock);

// Game traffic is small packets that must leave now: no Nagle delay.
void socket_set_nodelay(socket_t sock);

// Bytes in the socket's send queue the peer has not acknowledged. Returns 0,
// or -ENOTSUP where the platform cannot tell (Winsock has no portable count).
int socket_unacked(socket_t sock, uint64_t* bytes);

}  // namespace ringport
