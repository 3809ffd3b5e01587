#include "sockets.h"

#include <arpa/inet.h>
#include <linux/sockios.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace ringport {

int socket_shutdown_send(socket_t sock) { return shutdown(sock, SHUT_WR) == 0 ? 0 : -errno; }

void socket_set_reset(socket_t sock) {
  struct linger lg = {1, 0};
  setsockopt(sock, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
}

void socket_close(socket_t sock) { close(sock); }

void socket_set_nodelay(socket_t sock) {
  int one = 1;
  setsockopt(sock, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

int socket_unacked(socket_t sock, uint64_t* bytes) {
  int outq = 0;
  // SIOCOUTQ: bytes in the socket's send queue the peer has not acknowledged.
  if (ioctl(sock, SIOCOUTQ, &outq) < 0) return -errno;
  *bytes = static_cast<uint64_t>(outq);
  return 0;
}

int open_stream(int family) {
  int fd = socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return -errno;
  socket_set_nodelay(fd);
  return fd;
}

int open_listener(const char* host, int port, int backlog, bool reuse_port, int* bound_port) {
  sockaddr_storage addr;
  socklen_t len;
  int ret = parse_address(host, port, &addr, &len);
  if (ret < 0) return ret;
  int fd = socket(addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return -errno;
  int one = 1;
  int zero = 0;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  if (reuse_port && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) < 0) ret = -errno;
  // An unspecified host listens on IPv6 and IPv4 alike, as node:net does.
  if (ret == 0 && addr.ss_family == AF_INET6) setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero));
  if (ret == 0 && bind(fd, reinterpret_cast<sockaddr*>(&addr), len) < 0) ret = -errno;
  if (ret == 0 && listen(fd, backlog > 0 ? backlog : 511) < 0) ret = -errno;
  if (ret == 0) {
    sockaddr_storage bound;
    socklen_t bound_len = sizeof(bound);
    if (getsockname(fd, reinterpret_cast<sockaddr*>(&bound), &bound_len) < 0) ret = -errno;
    else *bound_port = port_of(bound);
  }
  if (ret < 0) {
    close(fd);
    return ret;
  }
  return fd;
}

}  // namespace ringport
