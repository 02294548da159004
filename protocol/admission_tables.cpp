// PeerTable and HandshakeList: see admission_tables.h.
#include "protocol/admission_tables.h"

namespace protocol {

uint32_t PeerTable::add_connection(const PeerKey& key) {
  auto [it, inserted] = map_.try_emplace(key, kNoIndex);
  if (inserted) {
    if (!free_.empty()) {
      it->second = free_.back();
      free_.pop_back();
    } else {
      it->second = static_cast<uint32_t>(entries_.size());
      entries_.emplace_back();
    }
    entries_[it->second] = PeerEntry();
    entries_[it->second].key = key;
  }
  ++entries_[it->second].connections;
  return it->second;
}

void PeerTable::remove_connection(uint32_t index) {
  PeerEntry& entry = entries_[index];
  if (--entry.connections != 0) return;
  // A handshake is a connection, so none can still be linked to this entry.
  map_.erase(entry.key);
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
