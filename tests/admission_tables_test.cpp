// PeerTable (interned addresses with counts) and HandshakeList (incomplete handshakes in accept
// order, overall and per address): the bookkeeping behind WsServer's admission.
#include "protocol/admission_tables.h"

#include <gtest/gtest.h>

#include <map>
#include <random>
#include <vector>

namespace protocol {
namespace {

PeerKey v4(uint32_t address) { return kIpv4KeyPrefix | address; }

// The fds of the list, oldest first, following the `newer` links.
std::vector<uint32_t> all_fds(const HandshakeList& list) {
  std::vector<uint32_t> fds;
  for (uint32_t n = list.oldest(); n != kNoIndex; n = list[n].newer) fds.push_back(list[n].fd);
  return fds;
}

// The fds of `peer`'s list, oldest first.
std::vector<uint32_t> peer_fds(const HandshakeList& list, PeerTable& peers, uint32_t peer) {
  std::vector<uint32_t> fds;
  for (uint32_t n = peers[peer].oldest; n != kNoIndex; n = list[n].peer_newer) fds.push_back(list[n].fd);
  return fds;
}

TEST(PeerTableTest, SameKeySameEntryAndCounts) {
  PeerTable peers;
  const uint32_t a = peers.add_connection(v4(1));
  const uint32_t b = peers.add_connection(v4(2));
  EXPECT_NE(a, kNoIndex);
  EXPECT_NE(b, kNoIndex);
  EXPECT_NE(a, b);
  EXPECT_EQ(peers.add_connection(v4(1)), a);
  EXPECT_EQ(peers[a].connections, 2u);
  EXPECT_EQ(peers[b].connections, 1u);
  EXPECT_EQ(peers.size(), 2u);
  // An IPv6 /64 whose low 32 bits equal an IPv4 key's is another address.
  EXPECT_NE(peers.add_connection(PeerKey{0x20010db800000001ull}), a);
  EXPECT_EQ(peers.size(), 3u);
}

TEST(PeerTableTest, FreedEntryIsReusedAndReset) {
  PeerTable peers;
  const uint32_t a = peers.add_connection(v4(1));
  peers.add_connection(v4(1));
  const uint32_t b = peers.add_connection(v4(2));
  peers.remove_connection(a);
  EXPECT_EQ(peers.size(), 2u);  // one connection left
  peers.remove_connection(a);
  EXPECT_EQ(peers.size(), 1u);
  // A new address takes the freed entry, with fresh counts and its own key.
  const uint32_t c = peers.add_connection(v4(3));
  EXPECT_EQ(c, a);
  EXPECT_EQ(peers[c].connections, 1u);
  EXPECT_EQ(peers[c].key, v4(3));
  EXPECT_EQ(peers.allocated(), 2u);
  // The old address is no longer found under that index: it gets an entry of its own.
  const uint32_t again = peers.add_connection(v4(1));
  EXPECT_NE(again, c);
  EXPECT_NE(again, b);
  EXPECT_EQ(peers[again].connections, 1u);
  EXPECT_EQ(peers.allocated(), 3u);
}

TEST(PeerTableTest, ChurnDoesNotGrowTheTable) {
  PeerTable peers;
  for (uint32_t round = 0; round < 1000; ++round) {
    const uint32_t index = peers.add_connection(v4(round));
    peers.remove_connection(index);
  }
  EXPECT_EQ(peers.size(), 0u);
  EXPECT_EQ(peers.allocated(), 1u);
}

// The index is open addressing with backward-shift deletion: checked against std::map under
// random churn over few keys (long probe runs, many deletions inside runs, wrap-around at the
// end of the index) and across growth. Each live address must keep its one entry: a lookup
// that missed it after a deletion would hand out a second entry with a count of 1.
TEST(PeerTableTest, RandomChurnMatchesAModel) {
  PeerTable peers;
  std::map<PeerKey, std::pair<uint32_t, uint32_t>> model;  // key -> (entry, connections)
  std::mt19937_64 random(18);
  std::vector<PeerKey> keys;
  for (uint32_t i = 0; i < 3000; ++i) keys.push_back(i % 3 == 0 ? v4(i) : PeerKey{0x20010db800000000ull + i * 0x10000ull});
  for (int step = 0; step < 200000; ++step) {
    // Few keys early (dense runs in a small index), all of them later (growth).
    const size_t span = step < 100000 ? 40 : keys.size();
    const PeerKey key = keys[random() % span];
    auto it = model.find(key);
    if (it == model.end() || random() % 2 == 0) {
      const uint32_t entry = peers.add_connection(key);
      if (it == model.end()) {
        ASSERT_EQ(peers[entry].connections, 1u) << "step " << step;
        model[key] = {entry, 1};
      } else {
        ASSERT_EQ(entry, it->second.first) << "step " << step << ": a live address got a second entry";
        ++it->second.second;
      }
      ASSERT_EQ(peers[entry].key, key);
    } else {
      peers.remove_connection(it->second.first);
      if (--it->second.second == 0) model.erase(it);
    }
    ASSERT_EQ(peers.size(), model.size()) << "step " << step;
  }
  for (const auto& [key, held] : model) {
    EXPECT_EQ(peers[held.first].key, key);
    EXPECT_EQ(peers[held.first].connections, held.second);
    // Found again through the index, not only through the index we kept.
    EXPECT_EQ(peers.add_connection(key), held.first);
  }
}

TEST(HandshakeListTest, AcceptOrderOverallAndPerAddress) {
  PeerTable peers;
  HandshakeList list;
  const uint32_t p = peers.add_connection(v4(1));
  const uint32_t q = peers.add_connection(v4(2));
  const uint32_t n10 = list.push(10, p, peers);
  list.push(11, q, peers);
  const uint32_t n12 = list.push(12, p, peers);
  list.push(13, kNoIndex, peers);  // not counted per address
  const uint32_t n14 = list.push(14, p, peers);
  EXPECT_EQ(list.size(), 5u);
  EXPECT_EQ(all_fds(list), (std::vector<uint32_t>{10, 11, 12, 13, 14}));
  EXPECT_EQ(peer_fds(list, peers, p), (std::vector<uint32_t>{10, 12, 14}));
  EXPECT_EQ(peer_fds(list, peers, q), (std::vector<uint32_t>{11}));
  EXPECT_EQ(peers[p].handshakes, 3u);
  EXPECT_EQ(list[n12].peer, p);

  // Removing from the middle, the front and the back keeps both lists and counts right.
  list.remove(n12, peers);
  EXPECT_EQ(all_fds(list), (std::vector<uint32_t>{10, 11, 13, 14}));
  EXPECT_EQ(peer_fds(list, peers, p), (std::vector<uint32_t>{10, 14}));
  list.remove(n10, peers);
  list.remove(n14, peers);
  EXPECT_EQ(all_fds(list), (std::vector<uint32_t>{11, 13}));
  EXPECT_EQ(peers[p].handshakes, 0u);
  EXPECT_EQ(peers[p].oldest, kNoIndex);
  EXPECT_EQ(peers[p].newest, kNoIndex);
  EXPECT_EQ(list.size(), 2u);
}

TEST(HandshakeListTest, FreedNodesAreReused) {
  PeerTable peers;
  HandshakeList list;
  const uint32_t p = peers.add_connection(v4(1));
  std::vector<uint32_t> nodes;
  for (uint32_t fd = 0; fd < 8; ++fd) nodes.push_back(list.push(fd, p, peers));
  for (uint32_t node : nodes) list.remove(node, peers);
  EXPECT_EQ(list.size(), 0u);
  EXPECT_EQ(list.oldest(), kNoIndex);
  // A thousand short handshakes afterwards use the nodes already there.
  for (uint32_t fd = 0; fd < 1000; ++fd) list.remove(list.push(fd, p, peers), peers);
  EXPECT_EQ(list.allocated(), 8u);
  // A reused node starts clean: no stale links from its previous life.
  const uint32_t a = list.push(100, kNoIndex, peers);
  const uint32_t b = list.push(101, p, peers);
  EXPECT_EQ(list[a].peer, kNoIndex);
  EXPECT_EQ(list[a].peer_older, kNoIndex);
  EXPECT_EQ(list[b].peer_older, kNoIndex);
  EXPECT_EQ(all_fds(list), (std::vector<uint32_t>{100, 101}));
  EXPECT_EQ(peer_fds(list, peers, p), (std::vector<uint32_t>{101}));
}

}  // namespace
}  // namespace protocol
