// PeerTable and HandshakeList: see admission_tables.h.
#include "protocol/admission_tables.h"

namespace protocol {

uint32_t PeerTable::add_connection(const PeerKey& key) {
  // At most 3/4 full: linear probes stay short, and the index costs 4-8 bytes an address.
  if ((live_ + 1) * 4 > index_.size() * 3) grow();
  const size_t mask = index_.size() - 1;
  for (size_t slot = home(key);; slot = (slot + 1) & mask) {
    uint32_t entry = index_[slot];
    if (entry == kNoIndex) {
      entry = new_entry(key);
      index_[slot] = entry;
      ++live_;
    } else if (entries_[entry].key != key) {
      continue;
    }
    ++entries_[entry].connections;
    return entry;
  }
}

uint32_t PeerTable::new_entry(PeerKey key) {
  uint32_t entry;
  if (!free_.empty()) {
    entry = free_.back();
    free_.pop_back();
  } else {
    entry = static_cast<uint32_t>(entries_.size());
    entries_.emplace_back();
  }
  entries_[entry] = PeerEntry();
  entries_[entry].key = key;
  return entry;
}

void PeerTable::grow() {
  std::vector<uint32_t> old;
  old.swap(index_);
  index_.assign(old.empty() ? 16 : old.size() * 2, kNoIndex);
  shift_ = 64 - static_cast<unsigned>(__builtin_ctzll(index_.size()));
  const size_t mask = index_.size() - 1;
  for (uint32_t entry : old) {
    if (entry == kNoIndex) continue;
    size_t slot = home(entries_[entry].key);
    while (index_[slot] != kNoIndex) slot = (slot + 1) & mask;
    index_[slot] = entry;
  }
}

void PeerTable::remove_connection(uint32_t index) {
  PeerEntry& entry = entries_[index];
  if (--entry.connections != 0) return;
  // A handshake is a connection, so none can still be linked to this entry.
  const size_t mask = index_.size() - 1;
  size_t hole = home(entry.key);
  while (index_[hole] != index) hole = (hole + 1) & mask;
  // Backward-shift deletion (Knuth 6.4, Algorithm R): an entry further along the run moves into
  // the hole unless its home lies cyclically in (hole, its slot], where the probe from home
  // would no longer pass the hole.
  for (size_t next = (hole + 1) & mask; index_[next] != kNoIndex; next = (next + 1) & mask) {
    const size_t start = home(entries_[index_[next]].key);
    const bool stays = hole <= next ? (hole < start && start <= next) : (hole < start || start <= next);
    if (stays) continue;
    index_[hole] = index_[next];
    hole = next;
  }
  index_[hole] = kNoIndex;
  --live_;
  free_.push_back(index);
}

uint32_t HandshakeList::push(uint32_t fd, uint32_t peer, PeerTable& peers) {
  uint32_t self;
  if (!free_.empty()) {
    self = free_.back();
    free_.pop_back();
  } else {
    self = static_cast<uint32_t>(nodes_.size());
    nodes_.emplace_back();
  }
  HandshakeNode& node = nodes_[self];
  node = HandshakeNode();
  node.fd = fd;
  node.peer = peer;
  node.older = newest_;
  if (newest_ != kNoIndex) nodes_[newest_].newer = self;
  else oldest_ = self;
  newest_ = self;
  if (peer != kNoIndex) {
    PeerEntry& entry = peers[peer];
    node.peer_older = entry.newest;
    if (entry.newest != kNoIndex) nodes_[entry.newest].peer_newer = self;
    else entry.oldest = self;
    entry.newest = self;
    ++entry.handshakes;
  }
  ++size_;
  return self;
}

void HandshakeList::remove(uint32_t index, PeerTable& peers) {
  HandshakeNode& node = nodes_[index];
  if (node.older != kNoIndex) nodes_[node.older].newer = node.newer;
  else oldest_ = node.newer;
  if (node.newer != kNoIndex) nodes_[node.newer].older = node.older;
  else newest_ = node.older;
  if (node.peer != kNoIndex) {
    PeerEntry& entry = peers[node.peer];
    if (node.peer_older != kNoIndex) nodes_[node.peer_older].peer_newer = node.peer_newer;
    else entry.oldest = node.peer_newer;
    if (node.peer_newer != kNoIndex) nodes_[node.peer_newer].peer_older = node.peer_older;
    else entry.newest = node.peer_older;
    --entry.handshakes;
  }
  node = HandshakeNode();
  free_.push_back(index);
  --size_;
}

}  // namespace protocol
