// Blocking-free socket set-up shared by the reactor's listen and connect.
#pragma once

#include <sys/socket.h>

#include <cstdint>

#include "../address.h"

namespace ringport {

// socket + SO_REUSEADDR (+ SO_REUSEPORT) + bind + listen, non-blocking.
// Returns the fd or -errno; *bound_port receives the port actually bound.
int open_listener(const char* host, int port, int backlog, bool reuse_port, int* bound_port);

// A non-blocking stream socket for `family` with TCP_NODELAY set.
int open_stream(int family);

// Game traffic is small packets that must leave now: no Nagle delay.
void set_nodelay(int fd);

}  // namespace ringport
