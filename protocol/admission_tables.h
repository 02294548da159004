#pragma once
// The bookkeeping behind WsServer's admission (ws_server_admission.cpp), kept apart from the fd
// table so that an idle upgraded connection pays one 32-bit word for it (issue 13 follow-up:
// 40 bytes per fd had pushed bench/idle_memory.sh from 55 to 101 bytes per connection).
//   PeerTable      one entry per peer address (interned), found by key only on accept;
//                  connections hold its 4-byte index.
//   HandshakeList  one node per INCOMPLETE handshake, in accept order (all of them, and per
//                  address), so the oldest can be closed first; freed when the 101 goes out.
// Both are dense vectors with free lists: slots are reused, never a heap allocation per
// connection, and index 0 is never handed out so a zero-filled word reads as "none".
// An address costs ~30 bytes at best (a 24-byte entry and 4-byte index slots at most 3/4 full)
// and more while the vectors' doubling leaves spare capacity: ~36 measured at 10,000 addresses.
// A million connections from as many addresses is the real-world shape. With std::unordered_map
// it was ~88 bytes an address, which million.sh's 13,000 source addresses showed as 46 bytes
// per connection on top of idle_memory.sh's 60 (19,000 connections from 10,000 addresses:
// 119 bytes per connection against 73 from 200).
#include <cstddef>
#include <cstdint>
#include <vector>

namespace protocol {

// A peer address as counted for the per-address caps, in 64 bits: an IPv6 /64 is its prefix;
// IPv4 (also IPv4-mapped IPv6) is kIpv4KeyPrefix | address, a prefix inside ff00::/8, which is
// multicast and so never the source of a TCP connection: the two kinds cannot collide.
using PeerKey = uint64_t;
inline constexpr PeerKey kIpv4KeyPrefix = 0xFFFFFFFF00000000ull;

// Index 0 of both tables: no entry / no node / end of a list.
inline constexpr uint32_t kNoIndex = 0;

// What one address holds: its connections and incomplete handshakes, and the ends of its
// handshake list (HandshakeList node indices).
struct PeerEntry {
  PeerKey key = 0;
  uint32_t connections = 0;
  uint32_t handshakes = 0;
  uint32_t oldest = kNoIndex;
  uint32_t newest = kNoIndex;
};

// Interned peer addresses, each with its counts; an entry lives while it holds a connection.
class PeerTable {
 public:
  PeerTable() : entries_(1) {}
  // Counts one more connection from `key` (interning it if new) and returns its entry's index.
  uint32_t add_connection(const PeerKey& key);
  // Counts one connection less for entry `index`; the last one frees the entry for reuse.
  void remove_connection(uint32_t index);
  // The entry at `index` (from add_connection, still holding a connection).
  PeerEntry& operator[](uint32_t index) { return entries_[index]; }
  // The number of addresses holding connections now.
  size_t size() const { return live_; }
  // Entries ever allocated (live and free): how large the table grew.
  size_t allocated() const { return entries_.size() - 1; }

 private:
  // The index slot where a probe for `key` starts (Fibonacci hashing: consecutive IPv4
  // addresses spread over the table).
  size_t home(PeerKey key) const { return static_cast<size_t>((key * 0x9E3779B97F4A7C15ull) >> shift_); }
  // Doubles the index (or creates it) and re-inserts every live entry.
  void grow();
  // A fresh entry for `key` (a freed one first).
  uint32_t new_entry(PeerKey key);

  std::vector<PeerEntry> entries_;  // [0] unused
  std::vector<uint32_t> free_;      // indices of freed entries, reused first
  // Open addressing with linear probing over entry indices (kNoIndex = empty), the key read
  // from the entry; deletion shifts later entries back, so there are no tombstones.
  std::vector<uint32_t> index_;
  unsigned shift_ = 64;  // 64 - log2(index_.size())
  size_t live_ = 0;
};

// One incomplete handshake: its fd, its address's entry (kNoIndex when not counted) and its
// links in the two lists (node indices).
struct HandshakeNode {
  uint32_t fd = 0;
  uint32_t peer = kNoIndex;
  uint32_t older = kNoIndex;  // all incomplete handshakes, oldest first
  uint32_t newer = kNoIndex;
  uint32_t peer_older = kNoIndex;  // the same address's
  uint32_t peer_newer = kNoIndex;
};

// The incomplete handshakes in accept order, overall and per address (the per-address list's
// ends live in the PeerEntry, so eviction within one address is O(1) too).
class HandshakeList {
 public:
  HandshakeList() : nodes_(1) {}
  // Links `fd` as the newest handshake (and the newest of `peer`'s, unless kNoIndex);
  // returns its node's index.
  uint32_t push(uint32_t fd, uint32_t peer, PeerTable& peers);
  // Unlinks node `index` from both lists and frees it for reuse.
  void remove(uint32_t index, PeerTable& peers);
  // The node at `index` (from push(), not yet removed).
  const HandshakeNode& operator[](uint32_t index) const { return nodes_[index]; }
  // The oldest node's index, kNoIndex when empty.
  uint32_t oldest() const { return oldest_; }
  // Nodes linked now.
  size_t size() const { return size_; }
  // Nodes ever allocated (linked and free): the peak of incomplete handshakes.
  size_t allocated() const { return nodes_.size() - 1; }

 private:
  std::vector<HandshakeNode> nodes_;  // [0] unused
  std::vector<uint32_t> free_;
  uint32_t oldest_ = kNoIndex;
  uint32_t newest_ = kNoIndex;
  size_t size_ = 0;
};

}  // namespace protocol
