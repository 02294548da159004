// TlsStream over a real non-blocking socket (a socketpair), with the test's memory-BIO client on
// the other end: the handshake, reads that leave nothing behind in OpenSSL, gathered writes
// that stall on a full socket and are retried from a copy at another address (as the write
// queue does), close_notify both ways, and failures.
#include "reactor/tls_stream.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <memory>
#include <string>
#include <vector>

#include "reactor/tls_context.h"
#include "tests/support/tls_client.h"
#include "tests/support/tls_test_certs.h"

namespace {

using reactor::IoStatus;

class TlsStreamTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(cert_.ok()) << cert_.error();
    std::string error;
    context_ = reactor::TlsContext::create(cert_.cert_path(), cert_.key_path(), error);
    ASSERT_NE(context_, nullptr) << error;
    int fds[2];
    ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, fds), 0);
    server_fd_ = fds[0];
    client_fd_ = fds[1];
    fcntl(server_fd_, F_SETFL, O_NONBLOCK);
    fcntl(client_fd_, F_SETFL, O_NONBLOCK);
    int small = 16 * 1024;
    setsockopt(server_fd_, SOL_SOCKET, SO_SNDBUF, &small, sizeof small);
    stream_.attach(context_->new_connection(server_fd_));
    ASSERT_TRUE(client_.start({}));
  }
  void TearDown() override {
    stream_.release();
    close(server_fd_);
    close(client_fd_);
  }

  // Moves the client's ciphertext to the socket and the socket's bytes to the client.
  void pump() {
    std::string out = client_.take_output();
    if (!out.empty()) {
      ASSERT_EQ(write(client_fd_, out.data(), out.size()), static_cast<ssize_t>(out.size()));
    }
    char buffer[65536];
    for (ssize_t n; (n = read(client_fd_, buffer, sizeof buffer)) > 0;) client_.feed(buffer, static_cast<size_t>(n));
  }

  void handshake() {
    for (int i = 0; i < 20 && !(stream_.established() && client_.established()); ++i) {
      if (!client_.established()) {
        ASSERT_GE(client_.handshake(), 0) << client_.error();
      }
      pump();
      if (!stream_.established()) {
        ASSERT_NE(stream_.handshake().status, IoStatus::kError);
      }
      pump();
    }
    ASSERT_TRUE(stream_.established() && client_.established());
  }

  void client_sends(const std::string& plaintext, size_t record_size = 0) {
    std::string wire = client_.encrypt(plaintext, record_size);
    ASSERT_EQ(write(client_fd_, wire.data(), wire.size()), static_cast<ssize_t>(wire.size()));
  }

  std::string client_receives() {
    pump();
    std::string plain;
    EXPECT_TRUE(client_.decrypt(plain)) << client_.error();
    return plain;
  }

  parley_test::TestCertificate cert_;
  std::unique_ptr<reactor::TlsContext> context_;
  int server_fd_ = -1;
  int client_fd_ = -1;
  reactor::TlsStream stream_;
  parley_test::TlsClientSession client_;
};

TEST_F(TlsStreamTest, HandshakeThenReadsEveryRecordUntilTheSocketIsDrained) {
  ASSERT_NO_FATAL_FAILURE(handshake());
  // Tickets and the like are not data: nothing to read yet.
  char buffer[1000];
  EXPECT_EQ(stream_.read(buffer, sizeof buffer).status, IoStatus::kAgain);
  ASSERT_NO_FATAL_FAILURE(client_sends("abcdefghi", 3));  // three records in one write
  reactor::IoResult r = stream_.read(buffer, sizeof buffer);
  ASSERT_EQ(r.status, IoStatus::kOk);
  EXPECT_EQ(std::string(buffer, r.bytes), "abcdefghi");
  EXPECT_EQ(stream_.read(buffer, sizeof buffer).status, IoStatus::kAgain);
}

TEST_F(TlsStreamTest, AFullBufferLeavesTheRestForTheNextCallWithoutANewEdge) {
  ASSERT_NO_FATAL_FAILURE(handshake());
  std::string sent(100, 'x');
  for (size_t i = 0; i < sent.size(); ++i) sent[i] = static_cast<char>('a' + i % 26);
  ASSERT_NO_FATAL_FAILURE(client_sends(sent));
  char buffer[1000];
  reactor::IoResult first = stream_.read(buffer, 10);
  ASSERT_EQ(first.status, IoStatus::kOk);
  ASSERT_EQ(first.bytes, 10u);
  // The socket is empty now: the other 90 bytes sit decrypted inside OpenSSL.
  reactor::IoResult rest = stream_.read(buffer + 10, sizeof buffer - 10);
  ASSERT_EQ(rest.status, IoStatus::kOk);
  EXPECT_EQ(std::string(buffer, 10 + rest.bytes), sent);
}

TEST_F(TlsStreamTest, StalledWritesRetriedFromACopyDeliverEveryByteInOrder) {
  ASSERT_NO_FATAL_FAILURE(handshake());
  // Many small buffers (gathered into records) then a large one, as frame headers and payloads.
  std::string expected;
  std::vector<std::string> pieces;
  for (int i = 0; i < 3000; ++i) pieces.push_back(std::to_string(i) + ",");
  pieces.push_back(std::string(3 << 20, 'L'));
  for (int i = 0; i < 500; ++i) pieces.push_back("t" + std::to_string(i));
  for (const std::string& p : pieces) expected += p;
  // The unsent rest is kept the way WriteQueue keeps it: a fresh copy each time it stalls.
  std::string pending = expected;
  std::string received;
  int stalls = 0;
  bool first = true;
  while (!pending.empty()) {
    std::vector<iovec> iov;
    if (first) {
      for (std::string& p : pieces) iov.push_back({p.data(), p.size()});
    } else {
      iov.push_back({pending.data(), pending.size()});
    }
    reactor::IoResult r = stream_.write_vector(iov.data(), static_cast<int>(iov.size()));
    ASSERT_NE(r.status, IoStatus::kError);
    if (r.bytes < pending.size()) {
      ++stalls;
      first = false;
      pending = std::string(pending, r.bytes);  // moves: OpenSSL must accept the new address
    } else {
      pending.clear();
    }
    received += client_receives();
  }
  for (int i = 0; i < 50 && received.size() < expected.size(); ++i) received += client_receives();
  EXPECT_GT(stalls, 0) << "the socket never filled: the retry path was not exercised";
  ASSERT_EQ(received.size(), expected.size());
  EXPECT_TRUE(received == expected);
}

TEST_F(TlsStreamTest, CloseNotifyBothWays) {
  ASSERT_NO_FATAL_FAILURE(handshake());
  stream_.shutdown();
  client_receives();
  EXPECT_TRUE(client_.close_notify_received());
  // The client's close_notify after its last data: the data first, then kClosed.
  ASSERT_NO_FATAL_FAILURE(client_sends("last"));
  SSL_shutdown(client_.ssl());
  pump();
  char buffer[100];
  reactor::IoResult r = stream_.read(buffer, sizeof buffer);
  ASSERT_EQ(r.status, IoStatus::kOk);
  EXPECT_EQ(std::string(buffer, r.bytes), "last");
  EXPECT_TRUE(stream_.saw_end());
  EXPECT_EQ(stream_.read(buffer, sizeof buffer).status, IoStatus::kClosed);
}

TEST_F(TlsStreamTest, PlainHttpFailsTheHandshakeAndWritesBeforeItAreRefused) {
  iovec iov{const_cast<char*>("x"), 1};
  EXPECT_EQ(stream_.write_vector(&iov, 1).status, IoStatus::kError);
  const char request[] = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
  ASSERT_EQ(write(client_fd_, request, sizeof request - 1), static_cast<ssize_t>(sizeof request - 1));
  char buffer[100];
  EXPECT_EQ(stream_.read(buffer, sizeof buffer).status, IoStatus::kError);
  EXPECT_FALSE(stream_.established());
  stream_.shutdown();  // a failed session sends nothing and does not crash
}

TEST_F(TlsStreamTest, EndOfStreamDuringTheHandshakeIsAnError) {
  ASSERT_EQ(shutdown(client_fd_, SHUT_WR), 0);
  EXPECT_EQ(stream_.handshake().status, IoStatus::kError);
}

}  // namespace
