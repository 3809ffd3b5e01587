// Blocking-free socket set-up shared by the reactor's listen and connect.
#pragma once

#include <sys/socket.h>

#include <cstdint>

namespace ringport {

// Parses a numeric IPv4 or IPv6 address; an empty host means every
// interface (IPv6 any, dual-stack). Returns 0 or -EINVAL.
int parse_address(const char* host, int port, sockaddr_storage* addr, socklen_t* len);

// socket + SO_REUSEADDR (+ SO_REUSEPORT) + bind + listen, non-blocking.
// Returns the fd or -errno; *bound_port receives the port actually bound.
int open_listener(const char* host, int port, int backlog, bool reuse_port, int* bound_port);

// A non-blocking stream socket for `family` with TCP_NODELAY set.
int open_stream(int family);

// Game traffic is small packets that must leave now: no Nagle delay.
void set_nodelay(int fd);

// The peer's IPv4 address in host order (IPv4-mapped IPv6 included), or 0.
uint32_t ipv4_of(const sockaddr_storage& addr);
int port_of(const sockaddr_storage& addr);

}  // namespace ringport
