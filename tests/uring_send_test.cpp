// The io_uring send path (issue 18): reactor::UringBatch on socket pairs (one submission for a
// batch, short writes, EAGAIN and errors answered as sendmsg() would), WriteQueue's
// gather/consume, backpressure end to end with --io-uring on, and the WsServer, echo,
// heartbeat, backpressure and drain suites re-run in a child with PARLEY_TEST_IO_URING=1
// (tests/support: every forked server and parleyd then batches its output), not copied.
#include <errno.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include "protocol/ws_server.h"
#include "reactor/event_loop.h"
#include "reactor/shared_buffer.h"
#include "reactor/uring_batch.h"
#include "reactor/write_queue.h"
#include "tests/support/forked_server.h"
#include "tests/support/shell_command.h"
#include "tests/support/ws_test_client.h"

namespace {

using namespace std::chrono_literals;
using reactor::IoResult;
using reactor::IoStatus;
using reactor::UringBatch;

// A connected, non-blocking stream socket pair, closed on destruction.
struct SocketPair {
  int fds[2] = {-1, -1};
  SocketPair() { EXPECT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds), 0); }
  ~SocketPair() {
    for (int fd : fds) {
      if (fd >= 0) close(fd);
    }
  }
};

// Collects completions by user_data.
struct Completions {
  std::vector<std::pair<uint64_t, IoResult>> results;
  static void record(void* context, uint64_t user_data, IoResult result) {
    static_cast<Completions*>(context)->results.push_back({user_data, result});
  }
};

// io_uring may be forbidden (seccomp, io_uring_disabled): the fallback is then what runs, and
// these tests have nothing to check. Everywhere else the ring must come up.
bool ring_forbidden(int rc) { return rc == -EPERM || rc == -ENOSYS || rc == -EACCES; }

std::string read_all(int fd) {
  std::string out;
  char buffer[65536];
  ssize_t n;
  while ((n = read(fd, buffer, sizeof buffer)) > 0) out.append(buffer, static_cast<size_t>(n));
  return out;
}

TEST(UringBatch, SendsOfSeveralSocketsLeaveInOneSubmission) {
  UringBatch batch;
  int rc = batch.open();
  if (ring_forbidden(rc)) GTEST_SKIP() << "io_uring not permitted here: " << -rc;
  ASSERT_EQ(rc, 0);
  SocketPair a, b;
  std::string one = "hello", two = "wor", three = "ld!";
  iovec single{one.data(), one.size()};
  iovec gathered[2] = {{two.data(), two.size()}, {three.data(), three.size()}};
  ASSERT_TRUE(batch.add_send(a.fds[0], &single, 1, 11));
  ASSERT_TRUE(batch.add_send(b.fds[0], gathered, 2, 22));
  EXPECT_EQ(batch.pending(), 2u);
  Completions done;
  ASSERT_EQ(batch.complete(&Completions::record, &done), 0);
  EXPECT_EQ(batch.pending(), 0u);
  EXPECT_EQ(batch.submissions(), 1u);
  EXPECT_EQ(batch.sends(), 2u);
  ASSERT_EQ(done.results.size(), 2u);
  for (auto& [id, result] : done.results) {
    EXPECT_EQ(result.status, IoStatus::kOk);
    EXPECT_EQ(result.bytes, id == 11 ? 5u : 6u);
  }
  EXPECT_EQ(read_all(a.fds[1]), "hello");
  EXPECT_EQ(read_all(b.fds[1]), "world!");
}

TEST(UringBatch, FullSocketGivesAShortWriteThenEagainLikeSendmsg) {
  UringBatch batch;
  int rc = batch.open();
  if (ring_forbidden(rc)) GTEST_SKIP() << "io_uring not permitted here: " << -rc;
  ASSERT_EQ(rc, 0);
  SocketPair pair;
  int size = 4096;
  setsockopt(pair.fds[0], SOL_SOCKET, SO_SNDBUF, &size, sizeof size);
  std::string big(4 << 20, 'x');
  iovec iov{big.data(), big.size()};
  Completions done;
  ASSERT_TRUE(batch.add_send(pair.fds[0], &iov, 1, 1));
  ASSERT_EQ(batch.complete(&Completions::record, &done), 0);
  ASSERT_EQ(done.results.size(), 1u);
  // The kernel took what fit and returned at once (MSG_DONTWAIT): no poll armed, no waiting.
  EXPECT_EQ(done.results[0].second.status, IoStatus::kOk);
  EXPECT_GT(done.results[0].second.bytes, 0u);
  EXPECT_LT(done.results[0].second.bytes, big.size());
  ASSERT_TRUE(batch.add_send(pair.fds[0], &iov, 1, 2));
  ASSERT_EQ(batch.complete(&Completions::record, &done), 0);
  ASSERT_EQ(done.results.size(), 2u);
  EXPECT_EQ(done.results[1].second.status, IoStatus::kAgain);
  EXPECT_EQ(done.results[1].second.bytes, 0u);
}

TEST(UringBatch, SendToAClosedPeerIsAnErrorNotSigpipe) {
  UringBatch batch;
  int rc = batch.open();
  if (ring_forbidden(rc)) GTEST_SKIP() << "io_uring not permitted here: " << -rc;
  ASSERT_EQ(rc, 0);
  SocketPair pair;
  close(pair.fds[1]);
  pair.fds[1] = -1;
  std::string data = "gone";
  iovec iov{data.data(), data.size()};
  Completions done;
  ASSERT_TRUE(batch.add_send(pair.fds[0], &iov, 1, 7));
  ASSERT_EQ(batch.complete(&Completions::record, &done), 0);  // the process is still alive
  ASSERT_EQ(done.results.size(), 1u);
  EXPECT_EQ(done.results[0].first, 7u);
  EXPECT_EQ(done.results[0].second.status, IoStatus::kError);
  EXPECT_EQ(done.results[0].second.error, EPIPE);
  EXPECT_TRUE(batch.is_open());  // one failed send does not end the ring
}

TEST(UringBatch, RefusesSendsBeyondItsEntriesAndBadCounts) {
  UringBatch batch;
  int rc = batch.open();
  if (ring_forbidden(rc)) GTEST_SKIP() << "io_uring not permitted here: " << -rc;
  ASSERT_EQ(rc, 0);
  SocketPair pair;
  char byte = 'x';
  iovec iov{&byte, 1};
  for (unsigned i = 0; i < UringBatch::kEntries; ++i) ASSERT_TRUE(batch.add_send(pair.fds[0], &iov, 1, i));
  EXPECT_FALSE(batch.add_send(pair.fds[0], &iov, 1, 999));
  Completions done;
  ASSERT_EQ(batch.complete(&Completions::record, &done), 0);
  EXPECT_EQ(done.results.size(), UringBatch::kEntries);
  EXPECT_EQ(read_all(pair.fds[1]).size(), UringBatch::kEntries);
  EXPECT_FALSE(batch.add_send(pair.fds[0], &iov, 0, 1));
  EXPECT_FALSE(batch.add_send(pair.fds[0], &iov, UringBatch::kMaxIov + 1, 1));
}

TEST(UringBatch, UnopenedBatchTakesNothing) {
  UringBatch batch;
  char byte = 'x';
  iovec iov{&byte, 1};
  EXPECT_FALSE(batch.is_open());
  EXPECT_FALSE(batch.add_send(0, &iov, 1, 1));
  EXPECT_EQ(batch.complete(&Completions::record, nullptr), 0);
}

TEST(WriteQueueGather, ConsumeKeepsTheRemainderOfAShortWriteInOrder) {
  reactor::WriteQueue queue;
  ASSERT_TRUE(queue.push_copy("abcdef", 6));
  reactor::SharedBuffer* frame = reactor::SharedBuffer::create(16);
  ASSERT_NE(frame, nullptr);
  frame->append("ghij", 4);
  queue.push(frame, 0, 4);  // still referenced here: shared, so "kl" below gets its own slice
  iovec iov[4];
  size_t requested = 0;
  ASSERT_EQ(queue.gather(iov, 4, requested), 2);
  EXPECT_EQ(requested, 10u);
  EXPECT_EQ(queue.bytes(), 10u);  // gathering consumes nothing
  // Short: 7 of 10 written, the socket is full.
  EXPECT_EQ(queue.consume(7, requested), IoStatus::kAgain);
  ASSERT_EQ(queue.gather(iov, 4, requested), 1);
  EXPECT_EQ(std::string(static_cast<char*>(iov[0].iov_base), iov[0].iov_len), "hij");
  // A gather bounded by `max` that is written whole: kOk with more still queued.
  ASSERT_TRUE(queue.push_copy("kl", 2));
  ASSERT_EQ(queue.gather(iov, 1, requested), 1);
  EXPECT_EQ(queue.consume(requested, requested), IoStatus::kOk);
  EXPECT_EQ(queue.bytes(), 2u);
  ASSERT_EQ(queue.gather(iov, 4, requested), 1);
  EXPECT_EQ(queue.consume(2, requested), IoStatus::kOk);
  EXPECT_TRUE(queue.empty());
  frame->release();
}

TEST(UringWsServer, IoUringConfigBatchesOutputOrReportsWhyNot) {
  reactor::EventLoop loop;
  ASSERT_EQ(loop.open(), 0);
  protocol::WsServerConfig config;
  config.io_uring = true;
  protocol::WsServer server(loop, config);
  if (ring_forbidden(server.io_uring_error())) {
    EXPECT_FALSE(server.io_uring_active());
    GTEST_SKIP() << "io_uring not permitted here: the server sends with sendmsg";
  }
  EXPECT_EQ(server.io_uring_error(), 0);
  EXPECT_TRUE(server.io_uring_active());
  protocol::WsServer plain(loop, {});
  EXPECT_FALSE(plain.io_uring_active());
  EXPECT_EQ(plain.io_uring_error(), 0);
}

// A client that writes thousands of messages before reading any: the echoes fill its socket,
// io_uring sends come back short and then EAGAIN, the rest waits in the queue for EPOLLOUT;
// once the client reads, every echo must arrive, whole and in order.
TEST(UringWsServer, ShortWritesAndBackpressureKeepEveryEchoInOrder) {
  protocol::WsServerConfig config;
  config.ping_interval_ms = 0;
  config.io_uring = true;
  // Room for the whole flood: past the cap an echo server closes with 1008 (tested elsewhere);
  // here every echo must get through the short writes.
  config.max_buffered = 16 << 20;
  parley_test::ForkedServer server(config);
  ASSERT_TRUE(server.ok());
  parley_test::WsTestClient client;
  ASSERT_TRUE(client.connect_tcp("127.0.0.1", server.port()));
  int size = 32 * 1024;
  setsockopt(client.fd(), SOL_SOCKET, SO_RCVBUF, &size, sizeof size);
  ASSERT_TRUE(client.upgrade()) << client.error();
  constexpr int kMessages = 4000;  // 4 MB of echoes: far beyond both sockets' buffers
  auto body = [](int i) {
    std::string text = "m" + std::to_string(i) + ":";
    text.resize(1000, static_cast<char>('a' + i % 26));
    return text;
  };
  std::string flood;
  for (int i = 0; i < kMessages; ++i) flood += parley_test::encode_frame(parley_test::kOpText, body(i));
  // Written straight to the socket from another thread (the client object is not shared:
  // its own send would read our echoes into its buffer and relieve the backpressure).
  std::thread writer([&, fd = client.fd()] {
    for (size_t sent = 0; sent < flood.size();) {
      ssize_t n = ::send(fd, flood.data() + sent, flood.size() - sent, MSG_NOSIGNAL);
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        pollfd p{fd, POLLOUT, 0};
        if (poll(&p, 1, 10000) != 1) return;
        continue;
      }
      if (n <= 0) return;
      sent += static_cast<size_t>(n);
    }
  });
  std::this_thread::sleep_for(300ms);  // let the queue build up before reading anything
  int received = 0;
  for (; received < kMessages; ++received) {
    parley_test::Received r = client.recv_message(10000ms);
    if (!r.ok() || r.payload != body(received)) {
      ADD_FAILURE() << "echo " << received << " missing, out of order or damaged: "
                    << (r.ok() ? r.payload.substr(0, 40) : r.error);
      break;
    }
  }
  shutdown(client.fd(), SHUT_WR);  // a writer still blocked (after a failure) gives up
  writer.join();
  EXPECT_EQ(received, kMessages);
}

// The WsServer, echo conformance, heartbeat, backpressure and drain suites once more, every
// server batching its output through io_uring: the same cases, not a copy of them.
TEST(UringWsServer, ServerSuitesPassWithIoUringOn) {
  if (std::getenv("PARLEY_TEST_IO_URING") != nullptr) GTEST_SKIP() << "already the io_uring run";
  {
    UringBatch probe;
    int rc = probe.open();
    if (ring_forbidden(rc)) GTEST_SKIP() << "io_uring not permitted here: " << -rc;
  }
  std::string output;
  const int status = parley_test::rerun_this_binary(
      "PARLEY_TEST_IO_URING=1",
      "EchoConformance*:WsServer.*:WsServerHeartbeat.*:WsServerBackpressure.*:WsServerDrain.*:WsServerRequests.*"
      ":UringWsServer.Short*",
      output);
  EXPECT_EQ(status, 0) << output;
  EXPECT_NE(output.find("[  PASSED  ] "), std::string::npos) << output;
  EXPECT_EQ(output.find("[  PASSED  ] 0 tests"), std::string::npos) << output;
}

}  // namespace
