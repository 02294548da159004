// The shipped examples (chat/examples/, built by make), each run as a child process and driven
// over loopback: embed_example (a product embedding parley.h: session auth, reserved names,
// moderation by kick, announcements) and ws_counter (protocol::WsServer for a non-chat protocol).
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <string>
#include <thread>
#include <vector>

#include "tests/embed_support.h"
#include "tests/support/parleyd_process.h"

namespace parley_test {
namespace {

// An example program as a child process, with its listening port read from its first line.
class ExampleProcess {
 public:
  ExampleProcess(const std::string& path, std::vector<std::string> args) {
    int out[2];
    if (pipe(out) != 0) return;
    pid_ = fork();
    if (pid_ == 0) {
      dup2(out[1], STDOUT_FILENO);
      close(out[0]);
      close(out[1]);
      std::vector<char*> argv{const_cast<char*>(path.c_str())};
      for (std::string& arg : args) argv.push_back(arg.data());
      argv.push_back(nullptr);
      execv(path.c_str(), argv.data());
      _exit(127);
    }
    close(out[1]);
    out_ = out[0];
    std::string line = read_line();
    const std::string prefix = "listening on 127.0.0.1:";
    if (line.rfind(prefix, 0) == 0) port_ = static_cast<uint16_t>(std::stoi(line.substr(prefix.size())));
    line_ = line;
  }
  ~ExampleProcess() {
    if (pid_ > 0 && !reaped_) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
    if (out_ >= 0) close(out_);
  }
  // One line of its stdout (blocking).
  std::string read_line() {
    std::string line;
    char c;
    while (line.size() < 500 && read(out_, &c, 1) == 1 && c != '\n') line += c;
    return line;
  }
  void signal(int signo) { kill(pid_, signo); }
  // The exit status, or -1 after 5 s.
  int wait() {
    for (int i = 0; i < 500; ++i) {
      int status = 0;
      if (waitpid(pid_, &status, WNOHANG) == pid_) {
        reaped_ = true;
        return status;
      }
      std::this_thread::sleep_for(milliseconds(10));
    }
    return -1;
  }
  uint16_t port() const { return port_; }
  const std::string& line() const { return line_; }

 private:
  pid_t pid_ = -1;
  int out_ = -1;
  uint16_t port_ = 0;
  bool reaped_ = false;
  std::string line_;
};

std::string example_path(const char* name) {
  std::string path = build_dir() + "/examples/" + name;
  EXPECT_EQ(access(path.c_str(), X_OK), 0) << path << " missing: build it with make";
  return path;
}

TEST(EmbedExamplesTest, ProductExampleChecksSessionsReservesNamesKicksAndAnnounces) {
  ExampleProcess example(example_path("embed_example"),
                         {"--listen", "127.0.0.1:0", "--tick-ms", "50", "--guests", "--session", "s-alice=alice",
                          "--session", "s-maria=maria:moderator", "--session", "s-admin=admin"});
  ASSERT_NE(example.port(), 0) << "no listening line, got: " << example.line();

  // The host's session check: an unknown session is 401; a session whose name is reserved 403.
  WsTestClient stale;
  EXPECT_FALSE(stale.connect("127.0.0.1", example.port(), "/chat", {"Cookie: theme=dark; sid=s-gone"}));
  EXPECT_EQ(stale.handshake_response().status, 401);
  WsTestClient fake_admin;
  EXPECT_FALSE(fake_admin.connect("127.0.0.1", example.port(), "/chat", {"Cookie: sid=s-admin"}));
  EXPECT_EQ(fake_admin.handshake_response().status, 403);

  // A guest (no cookie) cannot hello as admin: the name policy holds on hello too.
  WsTestClient guest;
  ASSERT_TRUE(guest.connect("127.0.0.1", example.port(), "/chat"));
  ASSERT_TRUE(guest.send_frame(kOpText, R"({"type":"hello","name":"admin"})"));
  EXPECT_EQ(json_field(next_text(guest), "code"), "invalid_name");
  ASSERT_TRUE(guest.send_frame(kOpText, R"({"type":"hello","name":"guest1"})"));
  EXPECT_EQ(json_field(next_text(guest), "name"), "guest1");

  // Signed in by cookie: welcome without hello; the custom type answers.
  WsTestClient alice;
  ASSERT_TRUE(alice.connect("127.0.0.1", example.port(), "/chat", {"Cookie: sid=s-alice"}));
  EXPECT_EQ(json_field(next_text(alice), "name"), "alice");
  ASSERT_TRUE(alice.send_frame(kOpText, R"({"type":"roll","sides":20})"));
  EXPECT_EQ(json_field(next_text(alice), "type"), "rolled");
  ASSERT_TRUE(alice.send_frame(kOpText, R"({"type":"join","room":"lobby"})"));
  EXPECT_EQ(json_field(next_of_type(alice, "notice"), "text"), "welcome to lobby");
  ASSERT_TRUE(alice.send_frame(kOpText, R"({"type":"msg","room":"lobby","text":"buy spam now"})"));
  EXPECT_EQ(json_field(next_of_type(alice, "error"), "code"), "rejected");
  // Host announcements: ticks from the host's thread.
  EXPECT_EQ(json_field(next_of_type(alice, "msg"), "from"), "clock");

  // Who is online, printed by the host on SIGUSR1 (host calls from another thread).
  example.signal(SIGUSR1);
  EXPECT_EQ(example.read_line(), "users: alice guest1");
  EXPECT_EQ(example.read_line(), "rooms: lobby");

  // A plain user's /kick does nothing; the moderator's kicks.
  ASSERT_TRUE(alice.send_frame(kOpText, R"({"type":"msg","room":"lobby","text":"/kick guest1"})"));
  EXPECT_EQ(json_field(next_of_type(alice, "error"), "code"), "rejected");
  WsTestClient maria;
  ASSERT_TRUE(maria.connect("127.0.0.1", example.port(), "/chat", {"Cookie: sid=s-maria"}));
  EXPECT_EQ(json_field(next_text(maria), "name"), "maria");
  ASSERT_TRUE(maria.send_frame(kOpText, R"({"type":"join","room":"lobby"})"));
  EXPECT_EQ(json_field(next_of_type(maria, "notice"), "type"), "notice");
  ASSERT_TRUE(maria.send_frame(kOpText, R"({"type":"msg","room":"lobby","text":"/kick guest1"})"));
  CloseResult kicked = guest.expect_close();
  EXPECT_TRUE(kicked.close_received) << kicked.error;
  EXPECT_EQ(kicked.code, 4000);
  EXPECT_EQ(kicked.reason, "kicked by a moderator");
  guest.disconnect();

  // SIGTERM: the signal handler calls Server::stop(): 1001 to everyone, exit 0.
  example.signal(SIGTERM);
  CloseResult closed = alice.expect_close();
  EXPECT_TRUE(closed.close_received) << closed.error;
  EXPECT_EQ(closed.code, 1001);
  alice.disconnect();
  maria.disconnect();
  int status = example.wait();
  ASSERT_NE(status, -1) << "did not stop on SIGTERM";
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
}

TEST(EmbedExamplesTest, WsServerExampleSpeaksItsOwnProtocol) {
  ExampleProcess example(example_path("ws_counter"), {"--listen", "127.0.0.1:0"});
  ASSERT_NE(example.port(), 0) << "no listening line, got: " << example.line();
  const std::vector<std::string> offer = {"Sec-WebSocket-Protocol: counter.v1"};

  WsTestClient no_protocol;
  EXPECT_FALSE(no_protocol.connect("127.0.0.1", example.port(), "/counter"));
  EXPECT_EQ(no_protocol.handshake_response().status, 400);

  WsTestClient a;
  WsTestClient b;
  ASSERT_TRUE(a.connect("127.0.0.1", example.port(), "/counter", offer)) << a.error();
  ASSERT_TRUE(b.connect("127.0.0.1", example.port(), "/counter", offer)) << b.error();
  EXPECT_EQ(a.handshake_response().header("Sec-WebSocket-Protocol").value_or(""), "counter.v1");
  EXPECT_EQ(next_text(a), "value 0");
  EXPECT_EQ(next_text(b), "value 0");
  ASSERT_TRUE(a.send_frame(kOpText, "+5"));
  EXPECT_EQ(next_text(a), "value 5");
  EXPECT_EQ(next_text(b), "value 5");
  ASSERT_TRUE(b.send_frame(kOpText, "-7"));
  EXPECT_EQ(next_text(a), "value -2");
  EXPECT_EQ(next_text(b), "value -2");
  ASSERT_TRUE(b.send_frame(kOpText, "get"));
  EXPECT_EQ(next_text(b), "value -2");
  ASSERT_TRUE(b.send_frame(kOpText, "+0"));
  CloseResult closed = b.expect_close();
  EXPECT_EQ(closed.code, 4400);
  EXPECT_EQ(closed.reason, "bad command");

  example.signal(SIGTERM);
  closed = a.expect_close();
  EXPECT_EQ(closed.code, 1001);
  a.disconnect();
  int status = example.wait();
  ASSERT_NE(status, -1) << "did not stop on SIGTERM";
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
}

}  // namespace
}  // namespace parley_test
