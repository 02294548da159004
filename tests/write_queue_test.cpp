#include "reactor/write_queue.h"

#include <errno.h>
#include <gtest/gtest.h>
#include <malloc.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "reactor/shared_buffer.h"

#if defined(__SANITIZE_ADDRESS__)
#define PARLEY_TEST_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define PARLEY_TEST_ASAN 1
#endif
#endif

#ifdef PARLEY_TEST_ASAN
extern "C" size_t __sanitizer_get_current_allocated_bytes();
#endif

namespace {

using reactor::IoResult;
using reactor::IoStatus;
using reactor::SharedBuffer;
using reactor::WriteQueue;

// A non-blocking AF_UNIX stream pair whose writing end has a small send buffer, so writes of
// more than a few KiB are partial and the queue has to keep the rest.
class SocketPair {
 public:
  SocketPair() {
    int fds[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds) != 0) return;
    writer_ = fds[0];
    reader_ = fds[1];
    int size = 4096;  // the kernel doubles it and enforces its minimum: a few KiB in all
    setsockopt(writer_, SOL_SOCKET, SO_SNDBUF, &size, sizeof size);
    setsockopt(reader_, SOL_SOCKET, SO_RCVBUF, &size, sizeof size);
  }
  ~SocketPair() {
    close_writer();
    close_reader();
  }
  SocketPair(const SocketPair&) = delete;
  SocketPair& operator=(const SocketPair&) = delete;

  bool ok() const { return writer_ >= 0 && reader_ >= 0; }
  int writer() const { return writer_; }
  int reader() const { return reader_; }
  void close_reader() {
    if (reader_ >= 0) ::close(reader_);
    reader_ = -1;
  }
  void close_writer() {
    if (writer_ >= 0) ::close(writer_);
    writer_ = -1;
  }

  // Reads everything available now (until EAGAIN) and appends it to `into`; returns the count.
  size_t drain(std::string& into) {
    size_t total = 0;
    char chunk[16384];
    for (;;) {
      ssize_t n = ::read(reader_, chunk, sizeof chunk);
      if (n <= 0) break;
      into.append(chunk, static_cast<size_t>(n));
      total += static_cast<size_t>(n);
    }
    return total;
  }

 private:
  int writer_ = -1;
  int reader_ = -1;
};

// Bytes the allocator currently has handed out (ASan's count under ASan, glibc's otherwise).
size_t heap_in_use() {
#ifdef PARLEY_TEST_ASAN
  return __sanitizer_get_current_allocated_bytes();
#else
  struct mallinfo2 info = mallinfo2();
  return info.uordblks + info.hblkhd;
#endif
}

std::string pattern(size_t length, unsigned seed) {
  std::string text(length, '\0');
  uint32_t state = seed * 2654435761u + 1;
  for (size_t i = 0; i < length; ++i) {
    state = state * 1664525u + 1013904223u;
    text[i] = static_cast<char>(state >> 24);
  }
  return text;
}

// Flushes, drains the reader, and repeats until the queue is empty; checks the accounting on
// every round. Returns the number of flush rounds that ended in kAgain.
int flush_until_empty(WriteQueue& queue, SocketPair& pair, std::string& received) {
  int again_rounds = 0;
  for (int round = 0; round < 100000; ++round) {
    const size_t queued = queue.bytes();
    IoResult result = queue.flush(pair.writer());
    EXPECT_NE(result.status, IoStatus::kError) << "errno " << result.error;
    if (result.status == IoStatus::kError) return again_rounds;
    EXPECT_EQ(queue.bytes(), queued - result.bytes) << "bytes() is not queued minus written";
    if (result.status == IoStatus::kOk) {
      EXPECT_TRUE(queue.empty());
      EXPECT_EQ(queue.bytes(), 0u);
      pair.drain(received);
      return again_rounds;
    }
    ++again_rounds;
    EXPECT_FALSE(queue.empty());
    EXPECT_GT(queue.bytes(), 0u);
    pair.drain(received);
  }
  ADD_FAILURE() << "queue never drained";
  return again_rounds;
}

class WriteQueueTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { signal(SIGPIPE, SIG_IGN); }
};

TEST_F(WriteQueueTest, StartsEmpty) {
  WriteQueue queue;
  EXPECT_TRUE(queue.empty());
  EXPECT_EQ(queue.bytes(), 0u);
}

TEST_F(WriteQueueTest, FlushOfAnEmptyQueueIsOkWithoutWriting) {
  SocketPair pair;
  ASSERT_TRUE(pair.ok());
  WriteQueue queue;
  IoResult result = queue.flush(pair.writer());
  EXPECT_EQ(result.status, IoStatus::kOk);
  EXPECT_EQ(result.bytes, 0u);
  // No syscall is needed for nothing: even a bad fd is fine.
  EXPECT_EQ(queue.flush(-1).status, IoStatus::kOk);
}

TEST_F(WriteQueueTest, PushTakesAReferenceAndCountsBytes) {
  SharedBuffer* buffer = SharedBuffer::copy_of("0123456789", 10);
  ASSERT_NE(buffer, nullptr);
  {
    WriteQueue queue;
    queue.push(buffer, 2, 5);
    EXPECT_EQ(buffer->references(), 2u);
    EXPECT_EQ(queue.bytes(), 5u);
    EXPECT_FALSE(queue.empty());
    queue.push(buffer, 0, 10);
    EXPECT_EQ(buffer->references(), 3u);
    EXPECT_EQ(queue.bytes(), 15u);
  }  // the destructor releases both
  EXPECT_EQ(buffer->references(), 1u);
  buffer->release();
}

TEST_F(WriteQueueTest, PushOfNothingTakesNoReference) {
  SharedBuffer* buffer = SharedBuffer::copy_of("abc", 3);
  ASSERT_NE(buffer, nullptr);
  WriteQueue queue;
  queue.push(buffer, 1, 0);
  EXPECT_EQ(buffer->references(), 1u);
  EXPECT_TRUE(queue.empty());
  EXPECT_TRUE(queue.push_copy("", 0));
  EXPECT_TRUE(queue.empty());
  buffer->release();
}

TEST_F(WriteQueueTest, PushAndPushCopyKeepOrder) {
  SocketPair pair;
  ASSERT_TRUE(pair.ok());
  SharedBuffer* frame = SharedBuffer::copy_of("<shared>", 8);
  ASSERT_NE(frame, nullptr);
  WriteQueue queue;
  ASSERT_TRUE(queue.push_copy("one,", 4));
  queue.push(frame, 1, 6);  // "shared"
  ASSERT_TRUE(queue.push_copy(",two,", 5));
  ASSERT_TRUE(queue.push_copy("three", 5));
  queue.push(frame, 0, 8);
  EXPECT_EQ(queue.bytes(), 4u + 6 + 5 + 5 + 8);
  frame->release();  // the queue's references keep it alive

  IoResult result = queue.flush(pair.writer());
  EXPECT_EQ(result.status, IoStatus::kOk);
  EXPECT_EQ(result.bytes, 28u);
  EXPECT_TRUE(queue.empty());
  std::string received;
  pair.drain(received);
  EXPECT_EQ(received, "one,shared,two,three<shared>");
}

TEST_F(WriteQueueTest, PushCopyAppendsToItsOwnTailBuffer) {
  SocketPair pair;
  ASSERT_TRUE(pair.ok());
  WriteQueue queue;
  // Small copies share one private chunk; flushing shows they arrive as one contiguous stream.
  std::string expected;
  for (int i = 0; i < 1000; ++i) {
    std::string piece = std::to_string(i) + ";";
    ASSERT_TRUE(queue.push_copy(piece.data(), piece.size()));
    expected += piece;
  }
  EXPECT_EQ(queue.bytes(), expected.size());
  std::string received;
  flush_until_empty(queue, pair, received);
  EXPECT_EQ(received, expected);
}

TEST_F(WriteQueueTest, PushCopyNeverAppendsIntoASharedBuffer) {
  // A shared frame with spare room at its end: appending there would corrupt what every other
  // holder of the frame sends.
  SharedBuffer* frame = SharedBuffer::create(64);
  ASSERT_NE(frame, nullptr);
  frame->append("FRAME", 5);
  WriteQueue queue;
  queue.push(frame, 0, 5);
  ASSERT_EQ(frame->references(), 2u);  // ours and the queue's
  ASSERT_TRUE(queue.push_copy("tail", 4));
  EXPECT_EQ(frame->size(), 5u) << "push_copy wrote into a buffer someone else holds";
  EXPECT_EQ(frame->room(), 59u);
  EXPECT_EQ(std::memcmp(frame->data(), "FRAME", 5), 0);
  EXPECT_EQ(queue.bytes(), 9u);

  SocketPair pair;
  ASSERT_TRUE(pair.ok());
  EXPECT_EQ(queue.flush(pair.writer()).status, IoStatus::kOk);
  std::string received;
  pair.drain(received);
  EXPECT_EQ(received, "FRAMEtail");
  EXPECT_EQ(frame->references(), 1u);
  frame->release();
}

TEST_F(WriteQueueTest, PushCopyNeverAppendsIntoABufferTwoQueuesHold) {
  SharedBuffer* frame = SharedBuffer::create(64);
  ASSERT_NE(frame, nullptr);
  frame->append("broadcast", 9);
  WriteQueue first;
  WriteQueue second;
  first.push(frame, 0, 9);
  second.push(frame, 0, 9);
  ASSERT_EQ(frame->references(), 3u);
  frame->release();  // only the two queues hold it now; our pointer is not used again
  ASSERT_TRUE(first.push_copy("-one", 4));
  ASSERT_TRUE(second.push_copy("-two", 4));

  SocketPair pair_one;
  SocketPair pair_two;
  ASSERT_TRUE(pair_one.ok() && pair_two.ok());
  EXPECT_EQ(first.flush(pair_one.writer()).status, IoStatus::kOk);
  EXPECT_EQ(second.flush(pair_two.writer()).status, IoStatus::kOk);
  std::string one;
  std::string two;
  pair_one.drain(one);
  pair_two.drain(two);
  EXPECT_EQ(one, "broadcast-one");
  EXPECT_EQ(two, "broadcast-two");
}

TEST_F(WriteQueueTest, PushCopyDoesNotAppendIntoAPartialSliceOfABuffer) {
  // The queue holds the only reference, but its slice ends before the buffer's end: bytes
  // appended after size() would not follow the slice.
  SharedBuffer* buffer = SharedBuffer::create(64);
  ASSERT_NE(buffer, nullptr);
  buffer->append("abcdef", 6);
  WriteQueue queue;
  queue.push(buffer, 0, 3);  // "abc"
  buffer->release();
  ASSERT_TRUE(queue.push_copy("XYZ", 3));
  SocketPair pair;
  ASSERT_TRUE(pair.ok());
  EXPECT_EQ(queue.flush(pair.writer()).status, IoStatus::kOk);
  std::string received;
  pair.drain(received);
  EXPECT_EQ(received, "abcXYZ");
}

TEST_F(WriteQueueTest, PushCopyLargerThanAChunk) {
  SocketPair pair;
  ASSERT_TRUE(pair.ok());
  WriteQueue queue;
  const std::string small = "head:";
  const std::string big = pattern(100000, 7);  // bigger than any copy chunk
  const std::string after = ":tail";
  ASSERT_TRUE(queue.push_copy(small.data(), small.size()));
  ASSERT_TRUE(queue.push_copy(big.data(), big.size()));
  ASSERT_TRUE(queue.push_copy(after.data(), after.size()));
  EXPECT_EQ(queue.bytes(), small.size() + big.size() + after.size());
  std::string received;
  EXPECT_GT(flush_until_empty(queue, pair, received), 0);
  EXPECT_EQ(received, small + big + after);
}

TEST_F(WriteQueueTest, PartialFlushesDeliverTheExactStream) {
  SocketPair pair;
  ASSERT_TRUE(pair.ok());
  WriteQueue queue;
  std::string expected;
  std::vector<SharedBuffer*> frames;
  // 300 slices (more than one writev batch of 64), mixing shared frames of varying sizes with
  // private copies, about 1.3 MB in all.
  for (unsigned i = 0; i < 300; ++i) {
    if (i % 3 == 0) {
      std::string text = pattern(1000 + i * 13, i);
      ASSERT_TRUE(queue.push_copy(text.data(), text.size()));
      expected += text;
    } else {
      std::string text = pattern(5000 + (i * 977) % 9000, i);
      SharedBuffer* frame = SharedBuffer::copy_of(text.data(), text.size());
      ASSERT_NE(frame, nullptr);
      // A slice that skips the first and last bytes, so offsets are exercised.
      queue.push(frame, 1, text.size() - 2);
      expected += text.substr(1, text.size() - 2);
      frames.push_back(frame);
    }
  }
  EXPECT_EQ(queue.bytes(), expected.size());
  for (SharedBuffer* frame : frames) EXPECT_EQ(frame->references(), 2u);

  // The first flush cannot take it all: the send buffer is a few KiB.
  const size_t queued = queue.bytes();
  IoResult first = queue.flush(pair.writer());
  ASSERT_EQ(first.status, IoStatus::kAgain);
  EXPECT_GT(first.bytes, 0u);
  EXPECT_LT(first.bytes, queued);
  EXPECT_EQ(queue.bytes(), queued - first.bytes);
  // Nothing drained: the socket stays full and a second flush moves nothing.
  IoResult stuck = queue.flush(pair.writer());
  EXPECT_EQ(stuck.status, IoStatus::kAgain);
  EXPECT_EQ(stuck.bytes, 0u);
  EXPECT_EQ(queue.bytes(), queued - first.bytes);

  std::string received;
  pair.drain(received);
  int again_rounds = flush_until_empty(queue, pair, received);
  EXPECT_GT(again_rounds, 10);  // it really took many partial rounds
  ASSERT_EQ(received.size(), expected.size());
  EXPECT_TRUE(received == expected) << "byte stream differs";

  // Every queue reference was released once its slice was sent.
  for (SharedBuffer* frame : frames) {
    EXPECT_EQ(frame->references(), 1u);
    frame->release();
  }
}

TEST_F(WriteQueueTest, ManySmallSharedSlicesCrossTheIovecBatch) {
  SocketPair pair;
  ASSERT_TRUE(pair.ok());
  const std::string text = pattern(256, 99);
  SharedBuffer* frame = SharedBuffer::copy_of(text.data(), text.size());
  ASSERT_NE(frame, nullptr);
  WriteQueue queue;
  std::string expected;
  // 1000 slices of 1..256 bytes of one buffer: many writev batches, partial slices at the ends.
  for (size_t i = 0; i < 1000; ++i) {
    size_t offset = i % 200;
    size_t length = 1 + (i * 37) % (text.size() - offset);
    queue.push(frame, offset, length);
    expected += text.substr(offset, length);
  }
  EXPECT_EQ(frame->references(), 1001u);
  std::string received;
  flush_until_empty(queue, pair, received);
  EXPECT_TRUE(received == expected) << "byte stream differs";
  EXPECT_EQ(frame->references(), 1u);
  frame->release();
}

TEST_F(WriteQueueTest, QueueIsReusableAfterDraining) {
  SocketPair pair;
  ASSERT_TRUE(pair.ok());
  WriteQueue queue;
  std::string expected;
  std::string received;
  for (unsigned round = 0; round < 5; ++round) {
    std::string text = pattern(20000 + round, round);
    ASSERT_TRUE(queue.push_copy(text.data(), text.size()));
    expected += text;
    flush_until_empty(queue, pair, received);
    EXPECT_TRUE(queue.empty());
  }
  EXPECT_TRUE(received == expected);
}

TEST_F(WriteQueueTest, PushWhileBlockedThenFinish) {
  // A connection keeps queueing while the peer is slow: new bytes go after the unsent ones.
  SocketPair pair;
  ASSERT_TRUE(pair.ok());
  WriteQueue queue;
  std::string expected;
  std::string received;
  for (unsigned i = 0; i < 50; ++i) {
    std::string text = pattern(3000 + i * 101, i);
    ASSERT_TRUE(queue.push_copy(text.data(), text.size()));
    expected += text;
    IoResult result = queue.flush(pair.writer());
    ASSERT_NE(result.status, IoStatus::kError);
    if (i % 4 == 0) pair.drain(received);
  }
  flush_until_empty(queue, pair, received);
  EXPECT_TRUE(received == expected);
}

TEST_F(WriteQueueTest, AQueueThatNeverDrainsDoesNotGrowWithSentSlices) {
  // A consumer that keeps up on average but never quite empties its queue: the queue holds
  // about the same bytes all along, so its memory must stay bounded too (DESIGN.md hot path 6),
  // however many slices have gone through it.
  SocketPair pair;
  ASSERT_TRUE(pair.ok());
  constexpr size_t kSlice = 100;
  const std::string text = pattern(kSlice, 5);
  SharedBuffer* frame = SharedBuffer::copy_of(text.data(), text.size());
  ASSERT_NE(frame, nullptr);
  WriteQueue queue;
  for (int i = 0; i < 2000; ++i) queue.push(frame, 0, kSlice);
  std::string received;
  size_t bytes_sent = 0;
  size_t owed = 0;  // bytes sent but not yet replaced: top up with whole slices only
  auto round = [&] {
    received.clear();
    pair.drain(received);
    IoResult result = queue.flush(pair.writer());
    ASSERT_EQ(result.status, IoStatus::kAgain);
    ASSERT_GT(result.bytes, 0u);
    bytes_sent += result.bytes;
    for (owed += result.bytes; owed >= kSlice; owed -= kSlice) queue.push(frame, 0, kSlice);
  };
  // Warm up so the slice array has reached its steady size before measuring.
  for (int i = 0; i < 50; ++i) ASSERT_NO_FATAL_FAILURE(round());
  const size_t before = heap_in_use();
  bytes_sent = 0;
  for (int i = 0; i < 2000; ++i) ASSERT_NO_FATAL_FAILURE(round());
  const size_t slices_sent = bytes_sent / kSlice;
  EXPECT_GT(slices_sent, 20000u);
  EXPECT_LT(queue.bytes(), 2001u * kSlice + 64 * 1024);
  const size_t after = heap_in_use();
  EXPECT_LT(after, before + 256 * 1024) << "the queue grew by " << (after - before) << " bytes after "
                                        << slices_sent << " slices went through it";
  queue.clear();
  EXPECT_EQ(frame->references(), 1u);
  frame->release();
}

TEST_F(WriteQueueTest, ClearReleasesReferences) {
  SharedBuffer* a = SharedBuffer::copy_of("aaaa", 4);
  SharedBuffer* b = SharedBuffer::copy_of("bbbb", 4);
  ASSERT_TRUE(a != nullptr && b != nullptr);
  WriteQueue queue;
  queue.push(a, 0, 4);
  queue.push(b, 0, 4);
  queue.push(a, 1, 2);
  ASSERT_TRUE(queue.push_copy("cc", 2));
  EXPECT_EQ(a->references(), 3u);
  EXPECT_EQ(b->references(), 2u);
  queue.clear();
  EXPECT_TRUE(queue.empty());
  EXPECT_EQ(queue.bytes(), 0u);
  EXPECT_EQ(a->references(), 1u);
  EXPECT_EQ(b->references(), 1u);
  // Usable afterwards.
  queue.push(b, 0, 4);
  EXPECT_EQ(b->references(), 2u);
  EXPECT_EQ(queue.bytes(), 4u);
  queue.clear();
  EXPECT_EQ(b->references(), 1u);
  a->release();
  b->release();
}

TEST_F(WriteQueueTest, ClearAfterPartialFlushReleasesOnlyWhatIsLeft) {
  SocketPair pair;
  ASSERT_TRUE(pair.ok());
  std::vector<SharedBuffer*> frames;
  WriteQueue queue;
  for (unsigned i = 0; i < 100; ++i) {
    std::string text = pattern(4000, i);
    SharedBuffer* frame = SharedBuffer::copy_of(text.data(), text.size());
    ASSERT_NE(frame, nullptr);
    queue.push(frame, 0, text.size());
    frames.push_back(frame);
  }
  ASSERT_EQ(queue.flush(pair.writer()).status, IoStatus::kAgain);
  size_t sent_frames = 0;
  for (SharedBuffer* frame : frames) sent_frames += frame->references() == 1 ? 1 : 0;
  EXPECT_LT(sent_frames, frames.size());
  queue.clear();
  for (SharedBuffer* frame : frames) {
    EXPECT_EQ(frame->references(), 1u);  // neither leaked nor released twice
    frame->release();
  }
}

TEST_F(WriteQueueTest, DestructorReleasesWhatIsLeft) {
  SharedBuffer* frame = SharedBuffer::copy_of("x", 1);
  ASSERT_NE(frame, nullptr);
  {
    WriteQueue queue;
    queue.push(frame, 0, 1);
    queue.push(frame, 0, 1);
    ASSERT_TRUE(queue.push_copy("private", 7));  // freed by the destructor (LeakSanitizer)
    EXPECT_EQ(frame->references(), 3u);
  }
  EXPECT_EQ(frame->references(), 1u);
  frame->release();
}

TEST_F(WriteQueueTest, FlushToAClosedPeerIsAnError) {
  SocketPair pair;
  ASSERT_TRUE(pair.ok());
  pair.close_reader();
  WriteQueue queue;
  ASSERT_TRUE(queue.push_copy("lost", 4));
  IoResult result = queue.flush(pair.writer());  // EPIPE, not SIGPIPE: the suite ignores it
  EXPECT_EQ(result.status, IoStatus::kError);
  EXPECT_EQ(result.error, EPIPE);
  EXPECT_EQ(result.bytes, 0u);
  EXPECT_EQ(queue.bytes(), 4u);  // nothing was taken; the owner decides to clear
  queue.clear();
  EXPECT_TRUE(queue.empty());
}

TEST_F(WriteQueueTest, PeerClosingMidStreamReportsWhatWasWritten) {
  SocketPair pair;
  ASSERT_TRUE(pair.ok());
  WriteQueue queue;
  const std::string big = pattern(200000, 3);
  ASSERT_TRUE(queue.push_copy(big.data(), big.size()));
  IoResult first = queue.flush(pair.writer());
  ASSERT_EQ(first.status, IoStatus::kAgain);
  ASSERT_GT(first.bytes, 0u);
  pair.close_reader();
  IoResult second = queue.flush(pair.writer());
  EXPECT_EQ(second.status, IoStatus::kError);
  EXPECT_EQ(second.error, EPIPE);
  EXPECT_EQ(second.bytes, 0u);
  EXPECT_EQ(queue.bytes(), big.size() - first.bytes);
}

TEST_F(WriteQueueTest, FlushToABadFdIsAnError) {
  WriteQueue queue;
  ASSERT_TRUE(queue.push_copy("x", 1));
  IoResult result = queue.flush(-1);
  EXPECT_EQ(result.status, IoStatus::kError);
  EXPECT_EQ(result.error, EBADF);
  EXPECT_EQ(queue.bytes(), 1u);
}

}  // namespace

// Issue 13: what a queue holds is counted as the heap it pins, and small private frames behind
// shared ones cost their size, not a copy chunk.

using reactor::MemoryAccount;

// A broadcast-like frame of `length` bytes, one reference held by the caller.
SharedBuffer* shared_frame(size_t length, unsigned seed) {
  const std::string text = pattern(length, seed);
  return SharedBuffer::copy_of(text.data(), text.size());
}

TEST(WriteQueueMemory, AnEmptyQueueCostsOnlyItself) {
  MemoryAccount account;
  {
    WriteQueue queue(&account);
    EXPECT_GE(queue.memory(), sizeof(WriteQueue));
    EXPECT_EQ(account.bytes(), queue.memory());
  }
  EXPECT_EQ(account.bytes(), 0u);
}

TEST(WriteQueueMemory, ASmallCopyBehindASharedFrameCostsItsAllocationNotAChunk) {
  // The issue's case: a member's queue ends in a broadcast frame and a ~50-byte `left` notice
  // is copied behind it. It used to take a 16 KiB chunk; it must cost about its own size.
  SharedBuffer* frame = shared_frame(4000, 1);
  ASSERT_NE(frame, nullptr);
  WriteQueue queue;
  // Three slices first, so the notice's slice fits the array without reallocating it (a freed
  // array would sit in glibc's tcache, still counted as in use by mallinfo2).
  for (int i = 0; i < 3; ++i) queue.push(frame, 0, frame->size());
  const size_t with_frame = queue.memory();
  EXPECT_GE(with_frame, frame->allocation_bytes()) << "a shared frame is charged in full";
  const std::string notice = R"({"type":"left","room":"lobby","user":"m1234"})";
  const uint8_t header[2] = {0x81, static_cast<uint8_t>(notice.size())};
  const size_t heap_before = heap_in_use();
  ASSERT_TRUE(queue.push_copy(header, sizeof header, notice.data(), notice.size()));
  const size_t heap_growth = heap_in_use() - heap_before;
  const size_t charged = queue.memory() - with_frame;
  // One buffer for header and payload together, sized to them (plus the slice array's growth).
  EXPECT_GE(charged, notice.size() + sizeof header);
  EXPECT_LE(charged, 256u) << "the notice pinned a whole chunk";
  EXPECT_LE(heap_growth, 256u) << "the heap grew by " << heap_growth << " for a " << notice.size() << "-byte notice";
  // memory() charges at least what the heap gave (less when glibc reused a chunk from its
  // tcache, which mallinfo2 already counted as in use).
  EXPECT_GE(charged, heap_growth);
  SocketPair pair;
  ASSERT_TRUE(pair.ok());
  std::string received;
  flush_until_empty(queue, pair, received);
  const std::string frame_text(reinterpret_cast<const char*>(frame->data()), frame->size());
  EXPECT_EQ(received, frame_text + frame_text + frame_text +
                          std::string(reinterpret_cast<const char*>(header), sizeof header) + notice);
  frame->release();
}

TEST(WriteQueueMemory, NoticesInterleavedWithSharedFramesStayProportionalToTheirSize) {
  // 2,000 rounds of "broadcast frame, private notice": the private copies must cost about their
  // bytes (they used to cost 2,000 x 16 KiB = 31 MiB), and memory() must match the heap.
  std::vector<SharedBuffer*> frames;
  for (int i = 0; i < 8; ++i) frames.push_back(shared_frame(300, static_cast<unsigned>(i)));
  const std::string notice(50, 'n');
  std::string expected;
  for (int i = 0; i < 2000; ++i) {
    const SharedBuffer* frame = frames[static_cast<size_t>(i) % frames.size()];
    expected.append(reinterpret_cast<const char*>(frame->data()), frame->size());
    expected += notice;
  }
  MemoryAccount account;
  {
    WriteQueue queue(&account);
    const size_t heap_before = heap_in_use();
    const size_t account_before = account.bytes();
    for (int i = 0; i < 2000; ++i) {
      SharedBuffer* frame = frames[static_cast<size_t>(i) % frames.size()];
      queue.push(frame, 0, frame->size());
      ASSERT_TRUE(queue.push_copy(notice.data(), notice.size()));
    }
    const size_t heap_growth = heap_in_use() - heap_before;
    EXPECT_LT(heap_growth, 2000u * (96 + 2 * 16) + 64 * 1024) << "private copies cost more than their size";
    // The account holds each shared frame once (they were allocated before heap_before); the
    // queue's own memory() counts a frame per slice (each keeps it alive), so it is larger.
    size_t frame_memory = 0;
    for (SharedBuffer* frame : frames) frame_memory += frame->allocation_bytes();
    const size_t charged = account.bytes() - account_before - frame_memory;
    EXPECT_GE(charged + 4096, heap_growth);
#ifndef PARLEY_TEST_ASAN
    // glibc: the same up to the slice arrays outgrown on the way (freed into its tcache, which
    // mallinfo2 still counts as in use).
    EXPECT_LE(charged, heap_growth + 4096) << "memory() charges more than the heap gave";
#endif
    EXPECT_GT(queue.memory(), account.bytes());
    SocketPair pair;
    ASSERT_TRUE(pair.ok());
    std::string received;
    flush_until_empty(queue, pair, received);
    EXPECT_EQ(received, expected);
    // Drained: only the queue object and its slice array (4,000 slices of 16 bytes) are left.
    EXPECT_LT(account.bytes(), 4096u * 16 + 1024);
    EXPECT_EQ(account.bytes(), queue.memory());
  }
  EXPECT_EQ(account.bytes(), 0u);
  for (SharedBuffer* frame : frames) {
    EXPECT_EQ(frame->references(), 1u);
    frame->release();
  }
}

TEST(WriteQueueMemory, ConsecutiveCopiesGrowTheirBuffersGeometrically) {
  // A stream of private copies (echo to a slow reader) starts small and doubles: few
  // allocations, and at most about half of the last one unused.
  WriteQueue queue;
  const size_t base = queue.memory();
  ASSERT_TRUE(queue.push_copy("x", 1));
  const size_t first_copy = queue.memory() - base;  // its buffer and a one-slice array
  EXPECT_GE(first_copy, WriteQueue::kMinCopyAllocation);
  EXPECT_LE(first_copy, WriteQueue::kMinCopyAllocation + 32);
  const std::string piece = pattern(100, 3);
  size_t copied = 1;
  for (int i = 0; i < 2000; ++i) {
    ASSERT_TRUE(queue.push_copy(piece.data(), piece.size()));
    copied += piece.size();
  }
  EXPECT_EQ(queue.bytes(), copied);
  EXPECT_LE(queue.memory(), copied + copied / 2 + WriteQueue::kMaxCopyAllocation + 4096);
  EXPECT_GE(queue.memory(), copied);
  // Buffers were 64, 128, ... 16 KiB, then 16 KiB each: about copied / 16 KiB + 9 slices.
  EXPECT_LT(queue.slice_capacity(), 64u);
}

TEST(WriteQueueMemory, ASharedFrameIsChargedToTheAccountOnceWhateverTheQueues) {
  SharedBuffer* frame = shared_frame(1000, 9);
  ASSERT_NE(frame, nullptr);
  MemoryAccount account;
  auto first = std::make_unique<WriteQueue>(&account);
  auto second = std::make_unique<WriteQueue>(&account);
  const size_t empty = account.bytes();
  first->push(frame, 0, frame->size());
  const size_t arrays = account.bytes() - empty - frame->allocation_bytes();
  EXPECT_LT(arrays, 256u);
  second->push(frame, 0, frame->size());
  first->push(frame, 0, frame->size());  // the same frame twice in one queue
  EXPECT_EQ(account.bytes(), empty + frame->allocation_bytes() + 2 * arrays) << "the frame was counted twice";
  EXPECT_GE(first->memory(), 2 * frame->allocation_bytes());
  EXPECT_GE(second->memory(), frame->allocation_bytes());
  // It stays charged while any queue holds it, and goes when the last one lets go.
  first->clear();
  EXPECT_EQ(account.bytes(), empty + frame->allocation_bytes() + 2 * arrays);
  SocketPair pair;
  ASSERT_TRUE(pair.ok());
  std::string received;
  flush_until_empty(*second, pair, received);
  EXPECT_EQ(account.bytes(), empty + 2 * arrays);
  EXPECT_EQ(account.released(), frame->allocation_bytes());
  first.reset();
  second.reset();
  EXPECT_EQ(account.bytes(), 0u);
  EXPECT_EQ(frame->references(), 1u);
  frame->release();
}

TEST(WriteQueueMemory, APartialFlushKeepsChargingWhatIsStillPinned) {
  // A buffer is pinned until its last byte is written: a half-written chunk still costs all of it.
  SocketPair pair;
  ASSERT_TRUE(pair.ok());
  MemoryAccount account;
  WriteQueue queue(&account);
  const std::string big = pattern(200000, 11);
  ASSERT_TRUE(queue.push_copy(big.data(), big.size()));
  const size_t full = queue.memory();
  EXPECT_GE(full, big.size() + sizeof(SharedBuffer));
  EXPECT_EQ(account.bytes(), full);
  IoResult result = queue.flush(pair.writer());
  ASSERT_EQ(result.status, IoStatus::kAgain);
  ASSERT_GT(result.bytes, 0u);
  EXPECT_EQ(queue.memory(), full);
  std::string received;
  flush_until_empty(queue, pair, received);
  EXPECT_LT(queue.memory(), 256u);
  EXPECT_EQ(account.bytes(), queue.memory());
}
