// Socket addresses, the same on every platform: the reactors differ in how
// they use a socket, not in how they read or write an address.
#pragma once

#ifdef _WIN32
#include <winsock2.h>
#include <ws2tcpip.h>
#else
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#endif

#include <cerrno>
#include <cstdint>
#include <cstring>

namespace ringport {

// A stream peer's address, IPv4 or IPv6: 28 bytes, where a sockaddr_storage
// takes 128, and every connection keeps one.
union peer_address {
  sockaddr any;
  sockaddr_in v4;
  sockaddr_in6 v6;
};

// Keeps `len` bytes of an address the kernel gave (at most a peer_address:
// a TCP peer is never longer).
inline void set_peer_address(peer_address& to, const sockaddr_storage& from, size_t len) {
  to = {};
  std::memcpy(&to, &from, len < sizeof(to) ? len : sizeof(to));
}

// The family of a sockaddr_storage or a peer_address.
template <typename Addr>
int family_of(const Addr& addr) {
  return reinterpret_cast<const sockaddr&>(addr).sa_family;
}

// Parses a numeric IPv4 or IPv6 address; an empty host means every interface
// (IPv6 any, dual-stack). Returns 0 or -EINVAL. `Len` is the platform's
// address length type (socklen_t, or int on Winsock).
template <typename Len>
int parse_address(const char* host, int port, sockaddr_storage* addr, Len* len) {
  std::memset(addr, 0, sizeof(*addr));
  if (port < 0 || port > 65535) return -EINVAL;
  auto* v4 = reinterpret_cast<sockaddr_in*>(addr);
  auto* v6 = reinterpret_cast<sockaddr_in6*>(addr);
  if (host == nullptr || host[0] == '\0') {
    v6->sin6_family = AF_INET6;
    v6->sin6_addr = in6addr_any;
    v6->sin6_port = htons(static_cast<uint16_t>(port));
    *len = sizeof(*v6);
    return 0;
  }
  if (inet_pton(AF_INET, host, &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons(static_cast<uint16_t>(port));
    *len = sizeof(*v4);
    return 0;
  }
  if (inet_pton(AF_INET6, host, &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(static_cast<uint16_t>(port));
    *len = sizeof(*v6);
    return 0;
  }
  return -EINVAL;
}

// The peer's IPv4 address in host order (IPv4-mapped IPv6 included), or 0.
template <typename Addr>
uint32_t ipv4_of(const Addr& addr) {
  if (family_of(addr) == AF_INET) {
    return ntohl(reinterpret_cast<const sockaddr_in&>(addr).sin_addr.s_addr);
  }
  if (family_of(addr) == AF_INET6) {
    const auto& a = reinterpret_cast<const sockaddr_in6&>(addr).sin6_addr;
    if (IN6_IS_ADDR_V4MAPPED(&a)) {
      uint32_t v4;
      std::memcpy(&v4, &a.s6_addr[12], 4);
      return ntohl(v4);
    }
  }
  return 0;
}

template <typename Addr>
int port_of(const Addr& addr) {
  if (family_of(addr) == AF_INET) return ntohs(reinterpret_cast<const sockaddr_in&>(addr).sin_port);
  if (family_of(addr) == AF_INET6) return ntohs(reinterpret_cast<const sockaddr_in6&>(addr).sin6_port);
  return 0;
}

// Whether a dial connected to itself: when nothing listens on a loopback
// port inside the ephemeral range, TCP's simultaneous open can pair a socket
// with itself if it was given that same port (ConnectEx binds first, and
// Linux hands bind() the odd ports a listener just freed). Nobody listens
// there, so the reactors report it as ECONNREFUSED, as Go's dialer does.
template <typename Socket>
bool connected_to_self(Socket sock, const peer_address& peer) {
  sockaddr_storage local = {};
#ifdef _WIN32
  int len = sizeof(local);
#else
  socklen_t len = sizeof(local);
#endif
  if (getsockname(sock, reinterpret_cast<sockaddr*>(&local), &len) != 0 || family_of(local) != family_of(peer)) return false;
  if (port_of(local) != port_of(peer)) return false;
  if (family_of(peer) == AF_INET) return reinterpret_cast<const sockaddr_in&>(local).sin_addr.s_addr == peer.v4.sin_addr.s_addr;
  return std::memcmp(&reinterpret_cast<const sockaddr_in6&>(local).sin6_addr, &peer.v6.sin6_addr, sizeof(in6_addr)) == 0;
}

}  // namespace ringport
