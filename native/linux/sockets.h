// Blocking-free socket set-up shared by the Linux mechanisms' listen and
// connect (the calls the core makes are in ../socket.h).
#pragma once

#include <sys/socket.h>

#include <cstdint>

#include "../address.h"
#include "../socket.h"

namespace ringport {

// socket + SO_REUSEADDR (+ SO_REUSEPORT) + bind + listen, non-blocking.
// Returns the fd or -errno; *bound_port receives the port actually bound.
int open_listener(const char* host, int port, int backlog, bool reuse_port, int* bound_port);

// A non-blocking stream socket for `family` with TCP_NODELAY set.
int open_stream(int family);

}  // namespace ringport
