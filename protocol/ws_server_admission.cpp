// WsServer, admission: per-address connection caps, and the incomplete handshakes kept in
// accept order so that, when fds or a cap run short, the OLDEST are closed first. A slowloris
// (request heads trickling in a byte at a time) holds only old handshakes, and a real client
// sends its head at once, so the newcomer wins and the attacker's connections are the ones
// that go (issue 13; nginx's limit_conn and client_header_timeout answer the same attack).
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <netinet/in.h>
#include <unistd.h>

#include <cstring>

#include "protocol/handshake.h"
#include "protocol/ws_connection.h"
#include "protocol/ws_server.h"
#include "reactor/socket_ops.h"

namespace protocol {

namespace {

// One allowance per /64 for IPv6: a single host usually owns the whole /64. IPv4-mapped IPv6
// addresses (a dual-stack listener) count as the IPv4 address they carry.
PeerKey peer_key_of(const reactor::SocketAddress& peer) {
  if (peer.storage.ss_family == AF_INET) {
    return kIpv4KeyPrefix | reinterpret_cast<const sockaddr_in*>(&peer.storage)->sin_addr.s_addr;
  }
  if (peer.storage.ss_family != AF_INET6) return 0;
  const auto* in6 = reinterpret_cast<const sockaddr_in6*>(&peer.storage);
  uint32_t v4;
  if (IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr)) {
    std::memcpy(&v4, in6->sin6_addr.s6_addr + 12, 4);
    return kIpv4KeyPrefix | v4;
  }
  // In network order, so the address's first byte is the key's top one (0xff only for multicast).
  uint64_t prefix;
  std::memcpy(&prefix, in6->sin6_addr.s6_addr, 8);
  return be64toh(prefix);
}

// What an evicted handshake is told, if its socket takes it: the same answer as a refusal at a
// connection limit, since the server is short of room rather than the request wrong.
constexpr std::string_view kEvictedBody = "server busy: too many incomplete requests\n";
constexpr std::string_view kEvictedHeaders = "Retry-After: 5\r\n";

// Timers firing this late mean the loop is behind its own schedule: an iteration took that
// long, or the process was stopped or starved of CPU. A whole second: at 250 ms, the soak
// (bench/soak.sh --short beside two compilers) paced three times, and the attackers'
// reconnections, queued ahead of real clients in the kernel's FIFO accept queue, kept a
// garbage head waiting 3.1 s for its 400 (the soak wants < 1 s). A server a second behind
// cannot answer anyone within a second anyway.
constexpr uint64_t kBehindLatenessMs = 1000;

}  // namespace

void WsServer::tend_admission() {
  // Behind on time (timers firing late) or behind on reading (the heartbeat deferred a pong
  // deadline). Not the heartbeat budget: it stretches with the connection count alone, busy or
  // not. Not the count of incomplete handshakes: a slowloris controls it, and pacing on it would
  // hand the attacker a lever against real clients (eviction of the oldest answers it). Not
  // memory: a new connection pins almost none (queues of existing ones do), and near the budget
  // upgrades already get 503 while the largest queues are shed; pacing there would only slow
  // real clients down behind a flood's reconnections.
  const bool late = iteration_lateness_ms_ > kBehindLatenessMs;
  const bool deferred = stats_.pong_deadlines_deferred != deferred_seen_;
  iteration_lateness_ms_ = 0;
  deferred_seen_ = stats_.pong_deadlines_deferred;
  if (!config_.pace_admission) return;
  pacer_.observe(loop_.now_ms(), late || deferred);
  stats_.accept_pace = pacer_.rate();
  if (!pacer_.take_change()) return;
  if (pacer_.pacing()) ++stats_.admission_paced;
  if (pacing_listener_) pacing_listener_(pacer_.pacing(), pacer_.rate(), stats_.connections);
}

bool WsServer::map_admission_words() {
  void* memory = mmap(nullptr, capacity_ * sizeof(uint32_t), PROT_READ | PROT_WRITE,
                      MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (memory == MAP_FAILED) return false;
  admission_words_ = static_cast<uint32_t*>(memory);
  return true;
}

void WsServer::unmap_admission_words() {
  if (admission_words_ != nullptr) munmap(admission_words_, capacity_ * sizeof(uint32_t));
  admission_words_ = nullptr;
}

uint32_t WsServer::handshake_cap() const {
  if (config_.max_handshakes != 0) return config_.max_handshakes;
  const size_t quarter = capacity_ / 4;
  return quarter < 64 ? 64 : static_cast<uint32_t>(quarter > UINT32_MAX ? UINT32_MAX : quarter);
}

bool WsServer::admit(int fd, const reactor::SocketAddress& peer) {
  // stats_.connections already counts this one.
  bool under_total = config_.max_connections == 0 || stats_.connections <= config_.max_connections;
  // At the total cap, an incomplete handshake makes room before a newcomer is refused.
  if (!under_total && evict_oldest_handshake(fd)) under_total = true;
  uint32_t& word = admission_words_[fd];
  word = kNoIndex;
  if (!per_peer()) return under_total;
  // Every admitted fd is counted (forget_peer() undoes exactly this), whatever the verdict.
  word = peers_.add_connection(peer_key_of(peer));
  const uint32_t connections = peers_[word].connections;
  return under_total && (config_.max_connections_per_ip == 0 || connections <= config_.max_connections_per_ip);
}

void WsServer::forget_peer(int fd) {
  leave_handshake(table_[fd]);
  uint32_t& word = admission_words_[fd];
  if (word != kNoIndex) peers_.remove_connection(word);
  word = kNoIndex;
}

void WsServer::enter_handshake(Connection& c) {
  const int fd = fd_of(c);
  uint32_t& word = admission_words_[fd];
  if (word & kInHandshake) return;
  // The node takes over the address's index; leave_handshake() puts it back in the word.
  const uint32_t peer = word;
  word = kInHandshake | handshakes_.push(static_cast<uint32_t>(fd), peer, peers_);
  ++stats_.handshakes;
  // Each step closes one older handshake; `c` itself is the newest and is never the one, so
  // its connection keeps `peer`'s entry alive throughout.
  if (peer != kNoIndex && config_.max_handshakes_per_ip != 0) {
    while (peers_[peer].handshakes > config_.max_handshakes_per_ip) {
      if (!evict_oldest_handshake(fd, peer)) break;
    }
  }
  while (stats_.handshakes > handshake_cap() && evict_oldest_handshake(fd)) {
  }
}

void WsServer::leave_handshake(Connection& c) {
  uint32_t& word = admission_words_[fd_of(c)];
  if (!(word & kInHandshake)) return;
  const uint32_t node = word & ~kInHandshake;
  word = handshakes_[node].peer;
  handshakes_.remove(node, peers_);
  --stats_.handshakes;
}

int WsServer::accept_without_fds(reactor::SocketAddress* peer) {
  if (reserve_fd_ < 0) return -EMFILE;
  // The spare fd lets us see whether anyone is waiting: a pending connection would otherwise
  // keep the listener readable forever (libuv's trick).
  ::close(reserve_fd_);
  reserve_fd_ = -1;
  int fd = reactor::accept_connection(listen_fd_, peer);
  if (fd >= 0 && !evict_oldest_handshake(fd)) {
    // Nothing to give way: refuse the newcomer rather than an established connection.
    ::close(fd);
    ++stats_.accept_rejected;
    fd = -ECANCELED;
  }
  // Into the fd just closed (the evicted handshake's or the dropped newcomer's).
  reserve_fd_ = open("/dev/null", O_RDONLY | O_CLOEXEC);
  return fd;
}

bool WsServer::evict_oldest_handshake(int keep_fd, uint32_t peer) {
  for (;;) {
    const uint32_t node = peer != kNoIndex ? peers_[peer].oldest : handshakes_.oldest();
    if (node == kNoIndex) return false;
    const uint32_t victim_fd = handshakes_[node].fd;
    if (victim_fd == static_cast<uint32_t>(keep_fd)) return false;
    Connection& victim = table_[victim_fd];
    if (victim.state != ConnectionState::kHandshake) {
      // Destroyed earlier in this iteration (free_closed() will release it): it frees no fd
      // now, so it leaves the list and the next oldest is taken.
      leave_handshake(victim);
      continue;
    }
    ++stats_.handshakes_evicted;
    // Best effort: a 503 if the socket takes it at once (under TLS there may be no session to
    // say it in). The fd is what is short, so there is no lingering close; the peer may see a
    // reset instead.
    char response[256];
    const size_t length = write_http_response(response, sizeof response, 503, "text/plain", kEvictedBody,
                                              kEvictedHeaders);
    if (length != 0 && victim.out == nullptr && !uses_tls(victim)) {
      iovec iov{response, length};
      write_output(victim, &iov, 1);
    }
    release_slot(victim);
    return true;
  }
}

}  // namespace protocol
