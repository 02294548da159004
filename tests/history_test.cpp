#include "chat/history.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace {

using chat::History;

std::vector<uint64_t> seqs(const History& history, History::Range range) {
  std::vector<uint64_t> out;
  for (size_t i = 0; i < range.count; ++i) out.push_back(history.at(range.first + i).seq);
  return out;
}

std::vector<uint64_t> all_seqs(const History& history) { return seqs(history, {0, history.size()}); }

void push_range(History& history, uint64_t first, uint64_t last) {
  for (uint64_t seq = first; seq <= last; ++seq) {
    ASSERT_TRUE(history.push("user" + std::to_string(seq % 7), "text " + std::to_string(seq), 1000 + seq, seq));
  }
}

TEST(HistoryTest, EmptyHistory) {
  History history(5);
  EXPECT_TRUE(history.empty());
  EXPECT_EQ(history.size(), 0u);
  EXPECT_EQ(history.capacity(), 5u);
  EXPECT_EQ(history.last_seq(), 0u);
  History::Range range = history.select(0, 0);
  EXPECT_EQ(range.count, 0u);
  range = history.select(10, 3);
  EXPECT_EQ(range.count, 0u);
}

TEST(HistoryTest, KeepsEntriesInOrderBeforeWrap) {
  History history(5);
  push_range(history, 1, 3);
  EXPECT_EQ(history.size(), 3u);
  EXPECT_EQ(all_seqs(history), (std::vector<uint64_t>{1, 2, 3}));
  EXPECT_EQ(history.at(0).from, "user1");
  EXPECT_EQ(history.at(0).text, "text 1");
  EXPECT_EQ(history.at(0).ts_ms, 1001u);
  EXPECT_EQ(history.last_seq(), 3u);
}

TEST(HistoryTest, WrapsAroundKeepingTheNewest) {
  History history(4);
  push_range(history, 1, 4);
  EXPECT_EQ(all_seqs(history), (std::vector<uint64_t>{1, 2, 3, 4}));
  push_range(history, 5, 5);
  EXPECT_EQ(all_seqs(history), (std::vector<uint64_t>{2, 3, 4, 5}));
  push_range(history, 6, 11);
  EXPECT_EQ(history.size(), 4u);
  EXPECT_EQ(all_seqs(history), (std::vector<uint64_t>{8, 9, 10, 11}));
  EXPECT_EQ(history.at(0).text, "text 8");
  EXPECT_EQ(history.at(3).text, "text 11");
  EXPECT_EQ(history.last_seq(), 11u);
}

TEST(HistoryTest, WrapsManyTimes) {
  History history(7);
  for (uint64_t seq = 1; seq <= 1000; ++seq) {
    ASSERT_TRUE(history.push("u", std::to_string(seq), seq, seq));
    size_t expected = std::min<uint64_t>(seq, 7);
    ASSERT_EQ(history.size(), expected);
    for (size_t i = 0; i < expected; ++i) {
      ASSERT_EQ(history.at(i).seq, seq - expected + 1 + i);
      ASSERT_EQ(history.at(i).text, std::to_string(seq - expected + 1 + i));
    }
  }
}

TEST(HistoryTest, LimitTakesTheNewest) {
  History history(10);
  push_range(history, 1, 8);
  EXPECT_EQ(seqs(history, history.select(0, 3)), (std::vector<uint64_t>{6, 7, 8}));
  EXPECT_EQ(seqs(history, history.select(0, 0)), (std::vector<uint64_t>{1, 2, 3, 4, 5, 6, 7, 8}));
  EXPECT_EQ(seqs(history, history.select(0, 100)), (std::vector<uint64_t>{1, 2, 3, 4, 5, 6, 7, 8}));
  EXPECT_EQ(seqs(history, history.select(0, 1)), (std::vector<uint64_t>{8}));
}

TEST(HistoryTest, BeforeSeqBoundsTheRange) {
  History history(5);
  push_range(history, 1, 12);  // keeps 8..12
  EXPECT_EQ(seqs(history, history.select(11, 0)), (std::vector<uint64_t>{8, 9, 10}));
  EXPECT_EQ(seqs(history, history.select(11, 2)), (std::vector<uint64_t>{9, 10}));
  EXPECT_EQ(seqs(history, history.select(13, 0)), (std::vector<uint64_t>{8, 9, 10, 11, 12}));
  EXPECT_EQ(seqs(history, history.select(1000, 2)), (std::vector<uint64_t>{11, 12}));
  // Everything before the oldest kept message is gone.
  EXPECT_EQ(history.select(8, 0).count, 0u);
  EXPECT_EQ(history.select(3, 5).count, 0u);
  EXPECT_EQ(seqs(history, history.select(9, 5)), (std::vector<uint64_t>{8}));
}

TEST(HistoryTest, BeforeSeqWithGapsInSeqs) {
  History history(6);
  for (uint64_t seq : {3, 5, 9, 10, 20, 21, 40}) ASSERT_TRUE(history.push("u", "t", 0, seq));
  EXPECT_EQ(all_seqs(history), (std::vector<uint64_t>{5, 9, 10, 20, 21, 40}));
  EXPECT_EQ(seqs(history, history.select(20, 0)), (std::vector<uint64_t>{5, 9, 10}));
  EXPECT_EQ(seqs(history, history.select(21, 2)), (std::vector<uint64_t>{10, 20}));
  EXPECT_EQ(seqs(history, history.select(6, 0)), (std::vector<uint64_t>{5}));
}

TEST(HistoryTest, BeforeSeqAgainstBruteForce) {
  History history(13);
  std::vector<uint64_t> pushed;
  for (uint64_t seq = 1; seq <= 40; seq += 1 + seq % 3) {
    ASSERT_TRUE(history.push("u", "t", 0, seq));
    pushed.push_back(seq);
    std::vector<uint64_t> kept(pushed.size() > 13 ? pushed.end() - 13 : pushed.begin(), pushed.end());
    for (uint64_t before = 0; before <= 45; ++before) {
      for (size_t limit = 0; limit <= 15; ++limit) {
        std::vector<uint64_t> expected;
        for (uint64_t s : kept) {
          if (before == 0 || s < before) expected.push_back(s);
        }
        if (limit != 0 && expected.size() > limit) expected.erase(expected.begin(), expected.end() - limit);
        ASSERT_EQ(seqs(history, history.select(before, limit)), expected) << "before " << before << " limit " << limit;
      }
    }
  }
}

TEST(HistoryTest, RejectsSeqsOutOfOrder) {
  History history(4);
  ASSERT_TRUE(history.push("a", "1", 0, 5));
  EXPECT_FALSE(history.push("a", "2", 0, 5));
  EXPECT_FALSE(history.push("a", "3", 0, 4));
  EXPECT_EQ(history.size(), 1u);
  EXPECT_TRUE(history.push("a", "4", 0, 6));
  EXPECT_EQ(all_seqs(history), (std::vector<uint64_t>{5, 6}));
}

TEST(HistoryTest, ZeroCapacityKeepsNothing) {
  History history(0);
  EXPECT_TRUE(history.push("a", "b", 1, 1));
  EXPECT_TRUE(history.empty());
  EXPECT_EQ(history.select(0, 10).count, 0u);
}

TEST(HistoryTest, CapacityOne) {
  History history(1);
  push_range(history, 1, 5);
  EXPECT_EQ(all_seqs(history), (std::vector<uint64_t>{5}));
  EXPECT_EQ(seqs(history, history.select(5, 0)), std::vector<uint64_t>{});
  EXPECT_EQ(seqs(history, history.select(6, 1)), (std::vector<uint64_t>{5}));
}

TEST(HistoryTest, ClearFreesAndRestarts) {
  History history(3);
  push_range(history, 1, 10);
  history.clear();
  EXPECT_TRUE(history.empty());
  EXPECT_EQ(history.last_seq(), 0u);
  // After clear, seqs may start over (a freed room that is created again).
  push_range(history, 1, 2);
  EXPECT_EQ(all_seqs(history), (std::vector<uint64_t>{1, 2}));
}

TEST(HistoryTest, OverwriteKeepsLongAndShortTexts) {
  History history(2);
  std::string long_text(5000, 'x');
  ASSERT_TRUE(history.push("alice", long_text, 1, 1));
  ASSERT_TRUE(history.push("bob", "short", 2, 2));
  ASSERT_TRUE(history.push("carol", "", 3, 3));  // overwrites the long one
  EXPECT_EQ(history.at(0).text, "short");
  EXPECT_EQ(history.at(1).text, "");
  EXPECT_EQ(history.at(1).from, "carol");
  ASSERT_TRUE(history.push("dave", long_text, 4, 4));
  EXPECT_EQ(history.at(1).text, long_text);
}

// Issue 13: early eviction frees the oldest message, keeps seq order, and the slots are reused.
TEST(HistoryTest, EvictOldestKeepsOrderAndReusesSlots) {
  History history(5);
  push_range(history, 1, 7);  // wrapped: holds 3..7
  history.evict_oldest();
  history.evict_oldest();
  EXPECT_EQ(all_seqs(history), (std::vector<uint64_t>{5, 6, 7}));
  EXPECT_EQ(seqs(history, history.select(7, 0)), (std::vector<uint64_t>{5, 6}));
  push_range(history, 8, 9);  // into the freed slots
  EXPECT_EQ(all_seqs(history), (std::vector<uint64_t>{5, 6, 7, 8, 9}));
  push_range(history, 10, 10);  // full again: overwrites the oldest
  EXPECT_EQ(all_seqs(history), (std::vector<uint64_t>{6, 7, 8, 9, 10}));
  EXPECT_EQ(history.at(0).text, "text 6");
  EXPECT_EQ(history.last_seq(), 10u);
  EXPECT_FALSE(history.push("x", "old", 1, 10));
}

TEST(HistoryTest, EvictedRingGrowsInOrder) {
  // Evictions before the ring reached its capacity, then growth: the ring must be rotated so
  // appending a slot keeps oldest-first order.
  History history(6);
  push_range(history, 1, 3);
  history.evict_oldest();  // head moves to 1, one free slot at the front
  push_range(history, 4, 4);  // reuses the free slot (wraps)
  push_range(history, 5, 7);  // grows: needs the rotation
  EXPECT_EQ(all_seqs(history), (std::vector<uint64_t>{2, 3, 4, 5, 6, 7}));
  push_range(history, 8, 8);
  EXPECT_EQ(all_seqs(history), (std::vector<uint64_t>{3, 4, 5, 6, 7, 8}));
}

TEST(HistoryTest, BytesCountTheHeapItHolds) {
  History history(4);
  EXPECT_EQ(history.bytes(), 0u);
  const std::string big(1000, 'x');
  ASSERT_TRUE(history.push("alice", big, 1, 1));
  // One slot array (at least one entry) and the text's heap block; "alice" fits inline.
  EXPECT_GE(history.bytes(), sizeof(chat::HistoryEntry) + big.size() + 1);
  EXPECT_LE(history.bytes(), 4 * sizeof(chat::HistoryEntry) + 2 * big.size());
  size_t one = history.bytes();
  ASSERT_TRUE(history.push("bob", big, 2, 2));
  EXPECT_GT(history.bytes(), one + big.size());
  history.evict_oldest();
  history.evict_oldest();  // the last one: everything goes, the slot array too
  EXPECT_TRUE(history.empty());
  EXPECT_EQ(history.bytes(), 0u);
  history.evict_oldest();  // empty: no-op
  EXPECT_EQ(history.bytes(), 0u);
  for (uint64_t seq = 3; seq < 20; ++seq) ASSERT_TRUE(history.push("carol", big, seq, seq));
  EXPECT_LE(history.bytes(), 4 * (sizeof(chat::HistoryEntry) + 2 * big.size()));
  history.clear();
  EXPECT_EQ(history.bytes(), 0u);
}

}  // namespace
