#include "winsock.h"

#include <windows.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "win_errors.h"

namespace ringport {

SOCKET open_socket(int family) {
  // WSA_FLAG_NO_HANDLE_INHERIT (Windows 7 SP1): a child process must not keep our sockets open.
  return WSASocketW(family, SOCK_STREAM, IPPROTO_TCP, nullptr, 0, WSA_FLAG_OVERLAPPED | WSA_FLAG_NO_HANDLE_INHERIT);
}

namespace {

int load_function(SOCKET sock, GUID guid, void* fn, size_t fn_size) {
  DWORD bytes = 0;
  if (WSAIoctl(sock, SIO_GET_EXTENSION_FUNCTION_POINTER, &guid, sizeof(guid), fn, static_cast<DWORD>(fn_size), &bytes,
               nullptr, nullptr) != 0) {
    return wsa_result();
  }
  return 0;
}

// Whether the socket's provider hands out real kernel handles. A layered
// (non-IFS) provider may complete a request without telling the port even
// when it reported success, so skipping the packet is only safe without one
// (libuv makes the same check).
bool ifs_provider(SOCKET sock) {
  WSAPROTOCOL_INFOW info;
  int len = sizeof(info);
  if (getsockopt(sock, SOL_SOCKET, SO_PROTOCOL_INFOW, reinterpret_cast<char*>(&info), &len) != 0) return false;
  return (info.dwServiceFlags1 & XP1_IFS_HANDLES) != 0;
}

// Tests turn skip mode off (RINGPORT_TEST_IOCP_SKIP=0) to run the path a
// machine with a layered provider takes; no production code sets it.
bool skip_mode_allowed() {
  static const bool allowed = [] {
    const char* value = std::getenv("RINGPORT_TEST_IOCP_SKIP");
    return value == nullptr || std::strcmp(value, "0") != 0;
  }();
  return allowed;
}

}  // namespace

int load_winsock_ext(int family, winsock_ext* ext) {
  SOCKET sock = open_socket(family);
  if (sock == INVALID_SOCKET) return wsa_result();
  int ret = load_function(sock, WSAID_ACCEPTEX, &ext->accept_ex, sizeof(ext->accept_ex));
  if (ret == 0) ret = load_function(sock, WSAID_CONNECTEX, &ext->connect_ex, sizeof(ext->connect_ex));
  if (ret == 0) {
    ret = load_function(sock, WSAID_GETACCEPTEXSOCKADDRS, &ext->get_accept_ex_sockaddrs,
                        sizeof(ext->get_accept_ex_sockaddrs));
  }
  closesocket(sock);
  return ret;
}

int attach_socket(SOCKET sock, HANDLE iocp, bool* skip_on_success) {
  u_long nonblocking = 1;
  if (ioctlsocket(sock, FIONBIO, &nonblocking) != 0) return wsa_result();
  if (CreateIoCompletionPort(reinterpret_cast<HANDLE>(sock), iocp, 0, 0) == nullptr) {
    return -errno_of(GetLastError());
  }
  // Without the flag every request posts a packet, even one that succeeded at
  // once; with it, such a request is handled by its caller instead. Both work,
  // so a refusal here only costs a trip through the port.
  *skip_on_success = skip_mode_allowed() && ifs_provider(sock) &&
                     SetFileCompletionNotificationModes(reinterpret_cast<HANDLE>(sock),
                                                        FILE_SKIP_COMPLETION_PORT_ON_SUCCESS |
                                                            FILE_SKIP_SET_EVENT_ON_HANDLE) != 0;
  return 0;
}

int socket_shutdown_send(socket_t sock) { return shutdown(sock, SD_SEND) == 0 ? 0 : wsa_result(); }

void socket_set_reset(socket_t sock) {
  struct linger lg = {1, 0};
  setsockopt(sock, SOL_SOCKET, SO_LINGER, reinterpret_cast<const char*>(&lg), sizeof(lg));
}

void socket_close(socket_t sock) { closesocket(sock); }

void socket_set_nodelay(socket_t sock) {
  BOOL one = TRUE;
  setsockopt(sock, IPPROTO_TCP, TCP_NODELAY, reinterpret_cast<const char*>(&one), sizeof(one));
}

// Winsock has no portable count of unacknowledged bytes: a closing
// connection's progress is judged by its queue alone.
int socket_unacked(socket_t, uint64_t*) { return -ENOTSUP; }

int open_listener(const char* host, int port, int backlog, HANDLE iocp, SOCKET* out, int* family,
                  bool* skip_on_success, int* bound_port) {
  sockaddr_storage addr;
  int len;
  int ret = parse_address(host, port, &addr, &len);
  if (ret < 0) return ret;
  SOCKET sock = open_socket(addr.ss_family);
  if (sock == INVALID_SOCKET) return wsa_result();
  // No SO_REUSEADDR: on Windows it lets another socket bind the port while
  // this one listens, and a restart needs no help past TIME_WAIT there.
  // An unspecified host listens on IPv6 and IPv4 alike, as node:net does.
  if (addr.ss_family == AF_INET6) {
    DWORD zero = 0;
    setsockopt(sock, IPPROTO_IPV6, IPV6_V6ONLY, reinterpret_cast<const char*>(&zero), sizeof(zero));
  }
  if (bind(sock, reinterpret_cast<sockaddr*>(&addr), len) != 0) ret = wsa_result();
  if (ret == 0 && listen(sock, backlog > 0 ? backlog : SOMAXCONN) != 0) ret = wsa_result();
  if (ret == 0) {
    sockaddr_storage bound;
    int bound_len = sizeof(bound);
    if (getsockname(sock, reinterpret_cast<sockaddr*>(&bound), &bound_len) != 0) ret = wsa_result();
    else *bound_port = port_of(bound);
  }
  if (ret == 0) ret = attach_socket(sock, iocp, skip_on_success);
  if (ret < 0) {
    closesocket(sock);
    return ret;
  }
  *out = sock;
  *family = addr.ss_family;
  return 0;
}

}  // namespace ringport
