#include "chat/room.h"

#include <gtest/gtest.h>

#include <map>
#include <memory>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "chat/chat_session.h"

namespace {

using chat::ChatSession;
using chat::kNoIndex;
using chat::Membership;
using chat::MembershipList;
using chat::RoomTable;
using chat::SessionPool;
using JoinStatus = RoomTable::JoinStatus;

// A session with a made-up connection id (fd = index + 100, generation 1).
uint32_t new_session(SessionPool& pool, std::string_view name) {
  uint32_t index = pool.acquire();
  ChatSession& session = pool.get(index);
  session.connection = (uint64_t{1} << 32) | (index + 100);
  session.set_name(name);
  return index;
}

std::set<uint32_t> members_of(const RoomTable& rooms, std::string_view name) {
  std::set<uint32_t> out;
  uint32_t id = rooms.find(name);
  if (id == kNoIndex) return out;
  for (const chat::RoomMember& member : rooms.room(id).members()) out.insert(member.session);
  return out;
}

void expect_invariants(const RoomTable& rooms) {
  std::string why;
  EXPECT_TRUE(rooms.check_invariants(&why)) << why;
}

TEST(MembershipListTest, InlineThenSpill) {
  MembershipList list;
  EXPECT_TRUE(list.empty());
  for (uint32_t i = 0; i < 4; ++i) EXPECT_EQ(list.push_back({i, i * 10}), i);
  EXPECT_TRUE(list.is_inline());
  EXPECT_EQ(list.push_back({4, 40}), 4u);
  EXPECT_FALSE(list.is_inline());
  for (uint32_t i = 5; i < 40; ++i) EXPECT_EQ(list.push_back({i, i * 10}), i);
  ASSERT_EQ(list.size(), 40u);
  for (uint32_t i = 0; i < 40; ++i) {
    EXPECT_EQ(list[i].room, i);
    EXPECT_EQ(list[i].slot, i * 10);
    EXPECT_EQ(list.find(i), i);
  }
  EXPECT_EQ(list.find(99), kNoIndex);
  list.reset();
  EXPECT_TRUE(list.empty());
  EXPECT_TRUE(list.is_inline());
  EXPECT_EQ(list.push_back({7, 1}), 0u);
  EXPECT_EQ(list.find(7), 0u);
}

TEST(MembershipListTest, SwapRemove) {
  MembershipList list;
  for (uint32_t i = 0; i < 6; ++i) list.push_back({i, 0});
  EXPECT_EQ(list.swap_remove(1), 5u);  // the last moved into 1
  EXPECT_EQ(list[1].room, 5u);
  EXPECT_EQ(list.swap_remove(4), kNoIndex);  // was the last
  ASSERT_EQ(list.size(), 4u);
  std::set<uint32_t> rooms;
  for (const Membership& m : list) rooms.insert(m.room);
  EXPECT_EQ(rooms, (std::set<uint32_t>{0, 2, 3, 5}));
}

TEST(SessionPoolTest, AcquireReleaseReuseAndStableAddresses) {
  SessionPool pool;
  std::vector<uint32_t> indices;
  std::vector<ChatSession*> addresses;
  for (int i = 0; i < 1000; ++i) {
    uint32_t index = pool.acquire();
    ASSERT_NE(index, kNoIndex);
    indices.push_back(index);
    addresses.push_back(&pool.get(index));
  }
  EXPECT_EQ(pool.live(), 1000u);
  for (size_t i = 0; i < indices.size(); ++i) EXPECT_EQ(&pool.get(indices[i]), addresses[i]);
  pool.get(indices[3]).set_name("alice");
  pool.get(indices[3]).memberships.push_back({1, 2});
  pool.release(indices[3]);
  EXPECT_FALSE(pool.get(indices[3]).in_use());
  pool.release(indices[3]);  // twice is harmless
  EXPECT_EQ(pool.live(), 999u);
  uint32_t again = pool.acquire();
  EXPECT_EQ(again, indices[3]);
  EXPECT_TRUE(pool.get(again).name().empty());
  EXPECT_TRUE(pool.get(again).memberships.empty());
  EXPECT_EQ(pool.capacity(), 1000u);
}

TEST(ChatSessionTest, NameIsInlineAndBounded) {
  ChatSession session;
  EXPECT_TRUE(session.name().empty());
  EXPECT_FALSE(session.set_name(""));
  EXPECT_FALSE(session.set_name(std::string(33, 'a')));
  EXPECT_TRUE(session.set_name(std::string(32, 'b')));
  EXPECT_EQ(session.name(), std::string(32, 'b'));
  EXPECT_TRUE(session.set_name("bob"));
  EXPECT_EQ(session.name(), "bob");
  // Small enough to keep per-connection state small (DESIGN.md "State per connection").
  EXPECT_LE(sizeof(ChatSession), 104u);
  EXPECT_EQ(sizeof(chat::RoomMember), 16u);
}

TEST(RoomTableTest, JoinCreatesAndLeaveFrees) {
  SessionPool pool;
  RoomTable rooms(pool, 50);
  uint32_t alice = new_session(pool, "alice");
  uint32_t bob = new_session(pool, "bob");
  EXPECT_EQ(rooms.find("lobby"), kNoIndex);

  RoomTable::JoinResult joined = rooms.join(alice, "lobby", 32);
  EXPECT_EQ(joined.status, JoinStatus::kJoined);
  ASSERT_NE(joined.room, kNoIndex);
  EXPECT_EQ(rooms.find("lobby"), joined.room);
  EXPECT_EQ(rooms.room(joined.room).name(), "lobby");
  EXPECT_EQ(rooms.size(), 1u);

  EXPECT_EQ(rooms.join(alice, "lobby", 32).status, JoinStatus::kAlreadyMember);
  EXPECT_EQ(rooms.join(bob, "lobby", 32).status, JoinStatus::kJoined);
  EXPECT_EQ(members_of(rooms, "lobby"), (std::set<uint32_t>{alice, bob}));
  expect_invariants(rooms);

  RoomTable::LeaveResult left = rooms.leave(alice, "lobby");
  EXPECT_EQ(left.room, joined.room);
  EXPECT_FALSE(left.freed);
  EXPECT_EQ(rooms.leave(alice, "lobby").room, kNoIndex);  // not a member any more
  EXPECT_EQ(rooms.leave(alice, "nowhere").room, kNoIndex);
  expect_invariants(rooms);

  left = rooms.leave(bob, "lobby");
  EXPECT_TRUE(left.freed);
  EXPECT_EQ(rooms.find("lobby"), kNoIndex);
  EXPECT_EQ(rooms.size(), 0u);
  expect_invariants(rooms);
}

TEST(RoomTableTest, SeqsStartAtOneAndRestartWhenARoomIsRecreated) {
  SessionPool pool;
  RoomTable rooms(pool, 5);
  uint32_t alice = new_session(pool, "alice");
  uint32_t id = rooms.join(alice, "r", 32).room;
  chat::Room& room = rooms.room(id);
  EXPECT_EQ(room.take_seq(), 1u);
  EXPECT_EQ(room.take_seq(), 2u);
  rooms.append_history(id, "alice", "hi", 1, 2);
  EXPECT_EQ(room.next_seq(), 3u);
  EXPECT_TRUE(rooms.leave(alice, "r").freed);
  uint32_t again = rooms.join(alice, "r", 32).room;
  EXPECT_EQ(rooms.room(again).next_seq(), 1u);
  EXPECT_TRUE(rooms.room(again).history().empty());
}

TEST(RoomTableTest, FreedSlabSlotsAreReused) {
  SessionPool pool;
  RoomTable rooms(pool, 5);
  uint32_t alice = new_session(pool, "alice");
  for (int round = 0; round < 10; ++round) {
    for (int i = 0; i < 8; ++i) rooms.join(alice, "room" + std::to_string(i), 32);
    for (int i = 0; i < 8; ++i) EXPECT_TRUE(rooms.leave(alice, "room" + std::to_string(i)).freed);
  }
  EXPECT_EQ(rooms.slab_size(), 8u);
  EXPECT_EQ(rooms.size(), 0u);
  expect_invariants(rooms);
}

TEST(RoomTableTest, TooManyRooms) {
  SessionPool pool;
  RoomTable rooms(pool, 5);
  uint32_t alice = new_session(pool, "alice");
  for (int i = 0; i < 3; ++i) EXPECT_EQ(rooms.join(alice, "r" + std::to_string(i), 3).status, JoinStatus::kJoined);
  EXPECT_EQ(rooms.join(alice, "r9", 3).status, JoinStatus::kTooManyRooms);
  EXPECT_EQ(rooms.find("r9"), kNoIndex);  // not created
  EXPECT_EQ(rooms.join(alice, "r1", 3).status, JoinStatus::kAlreadyMember);
  rooms.leave(alice, "r0");
  EXPECT_EQ(rooms.join(alice, "r9", 3).status, JoinStatus::kJoined);
  expect_invariants(rooms);
}

TEST(RoomTableTest, SwapRemoveFixesTheMovedMembersSlot) {
  SessionPool pool;
  RoomTable rooms(pool, 5);
  std::vector<uint32_t> users;
  for (int i = 0; i < 5; ++i) users.push_back(new_session(pool, "u" + std::to_string(i)));
  // Give each user other rooms first, so their membership of "big" sits at varying indices.
  for (int i = 0; i < 5; ++i) {
    for (int k = 0; k < i; ++k) rooms.join(users[i], "side" + std::to_string(k), 32);
    rooms.join(users[i], "big", 32);
  }
  expect_invariants(rooms);
  uint32_t big = rooms.find("big");
  ASSERT_EQ(rooms.room(big).size(), 5u);
  // Remove the first member: the last one (u4) moves into slot 0 and must know it.
  rooms.leave(users[0], "big");
  expect_invariants(rooms);
  EXPECT_EQ(rooms.room(big).members()[0].session, users[4]);
  const ChatSession& u4 = pool.get(users[4]);
  uint32_t index = u4.memberships.find(big);
  ASSERT_NE(index, kNoIndex);
  EXPECT_EQ(u4.memberships[index].slot, 0u);
  // Removing a membership from the middle of a session's list moves its last membership: the
  // room of that one must learn the new index.
  rooms.leave(users[4], "side0");
  expect_invariants(rooms);
  rooms.leave_at(users[3], 0);
  expect_invariants(rooms);
}

TEST(RoomTableTest, LeaveAllFromTheBack) {
  SessionPool pool;
  RoomTable rooms(pool, 5);
  uint32_t a = new_session(pool, "a");
  uint32_t b = new_session(pool, "b");
  for (int i = 0; i < 10; ++i) {
    rooms.join(a, "r" + std::to_string(i), 32);
    if (i % 2 == 0) rooms.join(b, "r" + std::to_string(i), 32);
  }
  size_t freed = 0;
  while (!pool.get(a).memberships.empty()) {
    freed += rooms.leave_at(a, pool.get(a).memberships.size() - 1).freed ? 1 : 0;
    expect_invariants(rooms);
  }
  EXPECT_EQ(freed, 5u);
  EXPECT_EQ(rooms.size(), 5u);
}

// Random churn (joins, leaves, leaves by index, disconnects) checked against a plain model of
// sets after every step.
TEST(RoomTableTest, RandomChurnMatchesModel) {
  constexpr size_t kMaxRooms = 6;  // above the inline capacity, so memberships spill
  constexpr int kRoomNames = 12;
  constexpr int kSessions = 40;
  std::mt19937_64 random(12345);
  SessionPool pool;
  RoomTable rooms(pool, 3);
  std::vector<uint32_t> sessions;
  std::map<uint32_t, std::set<std::string>> model_by_session;
  std::map<std::string, std::set<uint32_t>> model_by_room;
  for (int i = 0; i < kSessions; ++i) {
    uint32_t s = new_session(pool, "user" + std::to_string(i));
    sessions.push_back(s);
    model_by_session[s];
  }
  auto room_name = [&] { return "room" + std::to_string(random() % kRoomNames); };
  auto model_leave = [&](uint32_t s, const std::string& name) {
    model_by_session[s].erase(name);
    model_by_room[name].erase(s);
    bool freed = model_by_room[name].empty();
    if (freed) model_by_room.erase(name);
    return freed;
  };

  for (int step = 0; step < 20000; ++step) {
    size_t pick = random() % sessions.size();
    uint32_t s = sessions[pick];
    int op = static_cast<int>(random() % 10);
    if (op < 5) {
      std::string name = room_name();
      RoomTable::JoinResult result = rooms.join(s, name, kMaxRooms);
      if (model_by_session[s].count(name)) {
        ASSERT_EQ(result.status, JoinStatus::kAlreadyMember);
      } else if (model_by_session[s].size() >= kMaxRooms) {
        ASSERT_EQ(result.status, JoinStatus::kTooManyRooms);
      } else {
        ASSERT_EQ(result.status, JoinStatus::kJoined);
        model_by_session[s].insert(name);
        model_by_room[name].insert(s);
      }
    } else if (op < 8) {
      std::string name = room_name();
      RoomTable::LeaveResult result = rooms.leave(s, name);
      if (!model_by_session[s].count(name)) {
        ASSERT_EQ(result.room, kNoIndex);
      } else {
        ASSERT_NE(result.room, kNoIndex);
        ASSERT_EQ(result.freed, model_leave(s, name));
      }
    } else if (op < 9) {
      const MembershipList& list = pool.get(s).memberships;
      if (list.empty()) continue;
      uint32_t index = static_cast<uint32_t>(random() % list.size());
      std::string name = rooms.room(list[index].room).name();
      RoomTable::LeaveResult result = rooms.leave_at(s, index);
      ASSERT_EQ(result.freed, model_leave(s, name));
    } else {
      // Disconnect: leave everything, release, and a new session takes the place.
      while (!pool.get(s).memberships.empty()) {
        const MembershipList& list = pool.get(s).memberships;
        std::string name = rooms.room(list[list.size() - 1].room).name();
        ASSERT_EQ(rooms.leave_at(s, list.size() - 1).freed, model_leave(s, name));
      }
      model_by_session.erase(s);
      pool.release(s);
      uint32_t fresh = new_session(pool, "fresh" + std::to_string(step));
      sessions[pick] = fresh;
      model_by_session[fresh];
    }

    std::string why;
    ASSERT_TRUE(rooms.check_invariants(&why)) << "step " << step << ": " << why;
    ASSERT_EQ(rooms.size(), model_by_room.size()) << "step " << step;
    if (step % 50 == 0) {
      for (int r = 0; r < kRoomNames; ++r) {
        std::string name = "room" + std::to_string(r);
        auto it = model_by_room.find(name);
        std::set<uint32_t> expected = it == model_by_room.end() ? std::set<uint32_t>{} : it->second;
        ASSERT_EQ(members_of(rooms, name), expected) << "step " << step << " room " << name;
      }
    }
  }
}

// Many members: the dense array survives removals from every position.
TEST(RoomTableTest, LargeRoomRemovalsFromEveryPosition) {
  SessionPool pool;
  RoomTable rooms(pool, 0);
  std::vector<uint32_t> users;
  for (int i = 0; i < 2000; ++i) {
    users.push_back(new_session(pool, "u" + std::to_string(i)));
    ASSERT_EQ(rooms.join(users.back(), "big", 32).status, JoinStatus::kJoined);
  }
  std::mt19937 random(7);
  std::shuffle(users.begin(), users.end(), random);
  std::set<uint32_t> expected(users.begin(), users.end());
  for (size_t i = 0; i < users.size(); ++i) {
    RoomTable::LeaveResult result = rooms.leave(users[i], "big");
    expected.erase(users[i]);
    ASSERT_EQ(result.freed, expected.empty());
    if (i % 97 == 0) {
      expect_invariants(rooms);
      ASSERT_EQ(members_of(rooms, "big"), expected);
    }
  }
  EXPECT_EQ(rooms.size(), 0u);
}

// Issue 13: the history budget evicts from the room holding the most, and keeps every link.
TEST(RoomTableTest, HistoryBudgetEvictsFromTheLargestRoomFirst) {
  SessionPool pool;
  constexpr size_t kBudget = 64 * 1024;
  RoomTable rooms(pool, 50, kBudget);
  uint32_t alice = new_session(pool, "alice");
  uint32_t quiet = rooms.join(alice, "quiet", 32).room;
  uint32_t busy = rooms.join(alice, "busy", 32).room;
  uint32_t other = rooms.join(alice, "other", 32).room;
  for (uint64_t seq = 1; seq <= 3; ++seq) ASSERT_TRUE(rooms.append_history(quiet, "alice", "small", seq, seq));
  const std::string big(4000, 'b');
  std::string why;
  for (uint64_t seq = 1; seq <= 50; ++seq) {
    ASSERT_TRUE(rooms.append_history(busy, "alice", big, seq, seq));
    if (seq % 2 == 0) {
      ASSERT_TRUE(rooms.append_history(other, "alice", big, seq, seq));
    }
    ASSERT_LE(rooms.history_bytes(), kBudget);
    ASSERT_TRUE(rooms.check_invariants(&why)) << why;
  }
  EXPECT_GT(rooms.history_evictions(), 0u);
  EXPECT_EQ(rooms.room(quiet).history().size(), 3u);  // never the largest: untouched
  // The busy room keeps its newest messages; the two big rooms end up about even.
  const chat::History& history = rooms.room(busy).history();
  ASSERT_FALSE(history.empty());
  EXPECT_EQ(history.last_seq(), 50u);
  EXPECT_LE(rooms.room(busy).history().bytes(), rooms.room(other).history().bytes() + 2 * (big.size() + 1));
  // Freeing a room gives its bytes back.
  size_t before = rooms.history_bytes();
  size_t busy_bytes = history.bytes();
  ASSERT_TRUE(rooms.leave(alice, "busy").freed);
  EXPECT_EQ(rooms.history_bytes(), before - busy_bytes);
  ASSERT_TRUE(rooms.check_invariants(&why)) << why;
  ASSERT_TRUE(rooms.leave(alice, "quiet").freed);
  ASSERT_TRUE(rooms.leave(alice, "other").freed);
  EXPECT_EQ(rooms.history_bytes(), 0u);
  EXPECT_EQ(rooms.size(), 0u);
  ASSERT_TRUE(rooms.check_invariants(&why)) << why;
}

TEST(RoomTableTest, ABudgetSmallerThanOneMessageKeepsNothing) {
  SessionPool pool;
  RoomTable rooms(pool, 10, 100);
  uint32_t alice = new_session(pool, "alice");
  uint32_t id = rooms.join(alice, "r", 32).room;
  ASSERT_TRUE(rooms.append_history(id, "alice", std::string(500, 'x'), 1, 1));
  EXPECT_TRUE(rooms.room(id).history().empty());
  EXPECT_EQ(rooms.history_bytes(), 0u);
  std::string why;
  EXPECT_TRUE(rooms.check_invariants(&why)) << why;
}

TEST(RoomTableTest, RoomLimitsTotalAndPerOwner) {
  SessionPool pool;
  RoomTable rooms(pool, 5);
  rooms.set_room_limits(3, 2);
  uint32_t alice = new_session(pool, "alice");
  uint32_t bob = new_session(pool, "bob");
  constexpr uint64_t kAliceAddress = 1;
  constexpr uint64_t kBobAddress = 2;
  EXPECT_EQ(rooms.join(alice, "a1", 32, kAliceAddress).status, JoinStatus::kJoined);
  EXPECT_EQ(rooms.join(alice, "a2", 32, kAliceAddress).status, JoinStatus::kJoined);
  EXPECT_EQ(rooms.join(alice, "a3", 32, kAliceAddress).status, JoinStatus::kOwnerRoomLimit);
  EXPECT_EQ(rooms.rooms_of(kAliceAddress), 2u);
  EXPECT_EQ(rooms.join(bob, "a1", 32, kBobAddress).status, JoinStatus::kJoined);  // exists: no limit
  EXPECT_EQ(rooms.join(bob, "b1", 32, kBobAddress).status, JoinStatus::kJoined);
  EXPECT_EQ(rooms.join(bob, "b2", 32, kBobAddress).status, JoinStatus::kRoomLimit);  // 3 live
  EXPECT_EQ(rooms.join(bob, "b2", 32, RoomTable::kNoOwner).status, JoinStatus::kRoomLimit);
  // a1 lives on with bob after alice leaves: still alice's, until it is freed.
  EXPECT_FALSE(rooms.leave(alice, "a1").freed);
  EXPECT_EQ(rooms.rooms_of(kAliceAddress), 2u);
  EXPECT_TRUE(rooms.leave(bob, "a1").freed);
  EXPECT_EQ(rooms.rooms_of(kAliceAddress), 1u);
  EXPECT_EQ(rooms.join(alice, "a3", 32, kAliceAddress).status, JoinStatus::kJoined);
  EXPECT_EQ(rooms.size(), 3u);
  std::string why;
  EXPECT_TRUE(rooms.check_invariants(&why)) << why;
}

// Random joins, leaves and messages under a small budget: the heap and totals stay consistent.
TEST(RoomTableTest, RandomHistoryTrafficKeepsTheBudget) {
  SessionPool pool;
  constexpr size_t kBudget = 20000;
  RoomTable rooms(pool, 8, kBudget);
  std::vector<uint32_t> sessions;
  for (int i = 0; i < 6; ++i) sessions.push_back(new_session(pool, "u" + std::to_string(i)));
  std::mt19937 rng(13);
  std::string why;
  for (int step = 0; step < 5000; ++step) {
    uint32_t session = sessions[rng() % sessions.size()];
    std::string name = "r" + std::to_string(rng() % 10);
    switch (rng() % 4) {
      case 0:
        rooms.join(session, name, 32);
        break;
      case 1:
        rooms.leave(session, name);
        break;
      default: {
        uint32_t id = rooms.find(name);
        if (id == kNoIndex) break;
        chat::Room& room = rooms.room(id);
        uint64_t seq = room.take_seq();
        ASSERT_TRUE(rooms.append_history(id, "u", std::string(rng() % 3000, 'x'), seq, seq));
        break;
      }
    }
    ASSERT_LE(rooms.history_bytes(), kBudget);
    ASSERT_TRUE(rooms.check_invariants(&why)) << "step " << step << ": " << why;
  }
  EXPECT_GT(rooms.history_evictions(), 0u);
}

// Issue 18: a room's pending presence changes are net changes: opposite changes cancel out.
TEST(PresenceBatch, OppositeChangesCancelAndRepeatsAreDropped) {
  using chat::PresenceChange;
  chat::PresenceBatch batch;
  batch.note("a", PresenceChange::kJoined);
  batch.note("b", PresenceChange::kLeft);
  batch.note("a", PresenceChange::kJoined);  // a repeat (e.g. the same join heard twice from Redis)
  EXPECT_EQ(batch.count(PresenceChange::kJoined), 1u);
  EXPECT_EQ(batch.count(PresenceChange::kLeft), 1u);
  batch.note("a", PresenceChange::kLeft);  // joined and left within the batch: nothing to tell
  EXPECT_EQ(batch.count(PresenceChange::kJoined), 0u);
  batch.note("a", PresenceChange::kJoined);  // and joined again: told once, as a join
  batch.note("b", PresenceChange::kJoined);  // left and came back: nothing
  EXPECT_EQ(batch.count(PresenceChange::kJoined), 1u);
  EXPECT_EQ(batch.count(PresenceChange::kLeft), 0u);
  std::vector<std::string> live;
  for (const chat::PresenceBatch::Change& change : batch.changes) {
    if (!change.cancelled) live.push_back(change.user + (change.kind == PresenceChange::kJoined ? "+" : "-"));
  }
  EXPECT_EQ(live, std::vector<std::string>{"a+"});
  EXPECT_EQ(batch.size(), 1u);
}

// Away and back (a member's session held for resume, and resumed) pair up like joins and
// leaves, apart from them; a join and leave that cancel take the away or back between them along.
TEST(PresenceBatch, AwayAndBackCancelAndGoWithACancelledMembership) {
  using chat::PresenceChange;
  chat::PresenceBatch batch;
  batch.note("a", PresenceChange::kAway);
  batch.note("a", PresenceChange::kAway);  // a repeat
  batch.note("b", PresenceChange::kAway);
  batch.note("b", PresenceChange::kBack);  // dropped and resumed within the batch: nothing
  EXPECT_EQ(batch.count(PresenceChange::kAway), 1u);
  EXPECT_EQ(batch.count(PresenceChange::kBack), 0u);
  batch.note("a", PresenceChange::kLeft);  // away, then its session ended: both are told
  EXPECT_EQ(batch.size(), 2u);
  batch.note("c", PresenceChange::kJoined);
  batch.note("c", PresenceChange::kAway);
  batch.note("c", PresenceChange::kLeft);  // the others never knew c was here: nothing of c
  EXPECT_EQ(batch.count(PresenceChange::kAway), 1u);
  EXPECT_EQ(batch.count(PresenceChange::kJoined), 0u);
  batch.note("a", PresenceChange::kJoined);  // a came back as a new session: still there, not away
  EXPECT_EQ(batch.size(), 0u);
  for (const chat::PresenceBatch::Change& change : batch.changes) EXPECT_TRUE(change.cancelled) << change.user;
}

TEST(PresenceBatch, FreeingARoomDropsItsBatch) {
  SessionPool pool;
  RoomTable rooms(pool, 10);
  uint32_t session = new_session(pool, "a");
  RoomTable::JoinResult joined = rooms.join(session, "r", 32);
  rooms.room(joined.room).pending_presence() = std::make_unique<chat::PresenceBatch>();
  rooms.room(joined.room).pending_presence()->note("a", chat::PresenceChange::kJoined);
  ASSERT_TRUE(rooms.leave(session, "r").freed);
  joined = rooms.join(session, "r", 32);  // the same slab slot again
  EXPECT_EQ(rooms.room(joined.room).pending_presence(), nullptr);
}

}  // namespace
