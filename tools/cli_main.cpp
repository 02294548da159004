// parley-cli: an interactive WebSocket client in the spirit of wscat. One non-blocking socket and
// stdin, multiplexed with poll; signals arrive through a signalfd so Ctrl-C can close cleanly.
// wss:// runs the socket through reactor::TlsStream (the server's TLS layer, in connect state).
// The protocol work is ClientSession's (tools/cli_session.h); this file does the I/O, the
// reconnect loop and the chat mode's bookkeeping. Exit status: 0 clean, 1 connection failure,
// 2 usage error.
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <openssl/ssl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <deque>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "protocol/close_code.h"
#include "protocol/utf8.h"
#include "reactor/tls_context.h"
#include "reactor/tls_stream.h"
#include "tools/backoff.h"
#include "tools/chat_commands.h"
#include "tools/chat_display.h"
#include "tools/chat_reconnect.h"
#include "tools/cli_options.h"
#include "tools/cli_session.h"
#include "tools/tls_io.h"

namespace {

using namespace tools::cli;
using std::chrono::milliseconds;
using SteadyClock = std::chrono::steady_clock;

constexpr milliseconds kCloseTimeout{2000};       // for the server's close frame and its end of stream
constexpr size_t kReadChunk = 64 * 1024;
constexpr size_t kMaxQueuedOutput = 1 << 20;      // stop reading stdin while this much is unsent
constexpr size_t kMaxLine = 16u << 20;            // a longer line is sent in pieces of this size
constexpr size_t kMaxHexBytes = 64;               // of a binary message shown as hex
constexpr int kExitClean = 0;
constexpr int kExitFailure = 1;
constexpr int kExitInterrupted = 130;             // a second Ctrl-C: quit without waiting

milliseconds now_ms() {
  return std::chrono::duration_cast<milliseconds>(SteadyClock::now().time_since_epoch());
}

// How one connection attempt ended.
struct Outcome {
  bool retry = false;  // try again after a backoff delay
  int exit_code = kExitClean;
  std::string why;     // for the status line
};

Outcome exit_with(int code, std::string why = {}) { return Outcome{false, code, std::move(why)}; }
Outcome retry_because(std::string why) { return Outcome{true, kExitFailure, std::move(why)}; }

// Server close codes worth reconnecting after (RFC 6455 7.4.1 and the IANA registry): going
// away, internal error, service restart, try again later, bad gateway.
bool is_transient_close(uint16_t code) { return code == 1001 || (code >= 1011 && code <= 1014); }

std::string describe_close(uint16_t code, const std::string& reason) {
  std::string text = std::to_string(code);
  if (!reason.empty()) text += " (" + printable(reason) + ")";
  return text;
}

class Client {
 public:
  Client(const CliOptions& options, int signal_fd)
      : options_(options),
        signal_fd_(signal_fd),
        session_(make_config(options)),
        backoff_(BackoffPolicy{options.retry_delay, options.retry_max, options.retries, milliseconds(2000)},
                 [rng = std::mt19937_64(std::random_device{}())]() mutable { return rng(); }),
        read_buffer_(kReadChunk) {}

  int run() {
    if (options_.url.secure) {
      std::string why;
      tls_context_ = reactor::TlsContext::create_client(options_.tls, why);
      if (!tls_context_) {
        error(why);
        return kExitFailure;
      }
    }
    for (;;) {
      Outcome outcome = attempt();
      if (!outcome.retry) {
        if (!outcome.why.empty()) {
          if (outcome.exit_code == kExitClean) {
            status(outcome.why);
          } else {
            error(outcome.why);
          }
        }
        return outcome.exit_code;
      }
      const std::optional<milliseconds> delay = backoff_.next_delay();
      if (!delay) {
        error(outcome.why + "; giving up after " + std::to_string(options_.retries) +
              (options_.retries == 1 ? " retry" : " retries"));
        return kExitFailure;
      }
      error(outcome.why + "; reconnecting in " + std::to_string(delay->count()) + " ms (retry " +
            std::to_string(backoff_.attempts()) + " of " + std::to_string(options_.retries) + ")");
      if (!sleep_unless_interrupted(*delay)) {
        error("interrupted while reconnecting");
        return kExitFailure;
      }
    }
  }

 private:
  static SessionConfig make_config(const CliOptions& options) {
    SessionConfig config;
    config.host = tools::host_header_value(options.url);
    config.path = options.url.path;
    config.headers = options.headers;
    config.subprotocol = options.subprotocol;
    return config;
  }

  bool chat_mode() const { return !options_.chat_name.empty(); }

  void status(const std::string& line) {
    if (!options_.quiet) std::fprintf(stderr, "parley-cli: %s\n", line.c_str());
  }
  void error(const std::string& line) { std::fprintf(stderr, "parley-cli: %s\n", line.c_str()); }
  void print(const std::string& text) {
    std::fwrite(text.data(), 1, text.size(), stdout);
    std::fflush(stdout);
  }

  // Drains the signalfd; true when SIGINT or SIGTERM arrived.
  bool take_signal() {
    signalfd_siginfo info;
    bool got = false;
    while (read(signal_fd_, &info, sizeof info) == static_cast<ssize_t>(sizeof info)) got = true;
    return got;
  }

  // Waits `delay`; false when a signal cut it short.
  bool sleep_unless_interrupted(milliseconds delay) {
    const auto deadline = SteadyClock::now() + delay;
    for (;;) {
      const auto left = std::chrono::duration_cast<milliseconds>(deadline - SteadyClock::now());
      if (left.count() <= 0) return true;
      pollfd fd{signal_fd_, POLLIN, 0};
      const int n = poll(&fd, 1, static_cast<int>(left.count()) + 1);
      if (n > 0 && take_signal()) return false;
    }
  }

  // Resolves the host and connects, trying each address until one answers. Returns the
  // connected non-blocking socket, or -1 with `why` set (and `interrupted` on a signal).
  int connect_socket(SteadyClock::time_point deadline, std::string& why, bool& interrupted) {
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* list = nullptr;
    const std::string port = std::to_string(options_.url.port);
    const int rc = getaddrinfo(options_.url.host.c_str(), port.c_str(), &hints, &list);
    if (rc != 0) {
      why = "cannot resolve " + options_.url.host + ": " + gai_strerror(rc);
      return -1;
    }
    int connected = -1;
    for (addrinfo* address = list; address != nullptr && connected < 0; address = address->ai_next) {
      const int fd = socket(address->ai_family, address->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
                            address->ai_protocol);
      if (fd < 0) {
        why = std::string("socket: ") + std::strerror(errno);
        continue;
      }
      int err = 0;
      if (connect(fd, address->ai_addr, address->ai_addrlen) != 0) err = errno;
      if (err == EINPROGRESS) {
        err = ETIMEDOUT;
        for (;;) {
          const auto left = std::chrono::duration_cast<milliseconds>(deadline - SteadyClock::now());
          if (left.count() <= 0) break;
          pollfd fds[2] = {{fd, POLLOUT, 0}, {signal_fd_, POLLIN, 0}};
          const int n = poll(fds, 2, static_cast<int>(left.count()) + 1);
          if (n < 0 && errno != EINTR) {
            err = errno;
            break;
          }
          if (fds[1].revents != 0 && take_signal()) {
            interrupted = true;
            close(fd);
            freeaddrinfo(list);
            return -1;
          }
          if (fds[0].revents != 0) {
            socklen_t length = sizeof err;
            if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &length) != 0) err = errno;
            break;
          }
        }
      }
      if (err == 0) {
        connected = fd;
      } else {
        why = "cannot connect to " + options_.url.host + ":" + port + ": " + std::strerror(err);
        close(fd);
      }
    }
    freeaddrinfo(list);
    if (connected >= 0) {
      const int one = 1;
      setsockopt(connected, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    }
    return connected;
  }

  // wss://: the TLS handshake on the connected socket `fd`, bounded by `deadline`. False with
  // `why` set; `fatal` when retrying cannot help (a refused certificate, not a TLS server).
  bool tls_handshake(int fd, SteadyClock::time_point deadline, std::string& why, bool& fatal, bool& interrupted) {
    const std::string where = options_.url.host + ":" + std::to_string(options_.url.port);
    SSL* ssl = tls_context_->new_client_connection(fd, options_.url.host);
    if (ssl == nullptr) {
      why = "cannot create a TLS session: out of memory";
      fatal = true;
      return false;
    }
    tls_.attach(ssl);
    for (;;) {
      const reactor::IoResult r = tls_.handshake();
      if (r.status == reactor::IoStatus::kOk) return true;
      if (r.status != reactor::IoStatus::kAgain) {
        // EPROTO: OpenSSL refused (the certificate, the protocol); anything else is the socket.
        fatal = r.error == EPROTO;
        why = "TLS handshake with " + where + " failed: " +
              (fatal ? reactor::describe_client_handshake_failure(tls_.native(), "not a TLS server, or no common version")
                     : std::string(std::strerror(r.error)));
        return false;
      }
      const auto left = std::chrono::duration_cast<milliseconds>(deadline - SteadyClock::now());
      if (left.count() <= 0) {
        why = "no TLS handshake with " + where + " within " + std::to_string(options_.connect_timeout.count()) + " ms";
        return false;
      }
      pollfd fds[2] = {{fd, static_cast<short>(SSL_want_write(ssl) ? POLLOUT : POLLIN), 0}, {signal_fd_, POLLIN, 0}};
      if (poll(fds, 2, static_cast<int>(left.count()) + 1) < 0 && errno != EINTR) {
        why = std::string("poll: ") + std::strerror(errno);
        return false;
      }
      if (fds[1].revents != 0 && take_signal()) {
        interrupted = true;
        return false;
      }
    }
  }

  // recv() and send() on the socket, through TLS for wss:// (same results and errno). A
  // stalled TLS write is retried with out_, which still starts with the same bytes.
  ssize_t receive(int fd) {
    return tls_.attached() ? tools::tls_read(tls_, read_buffer_.data(), read_buffer_.size())
                           : recv(fd, read_buffer_.data(), read_buffer_.size(), 0);
  }
  ssize_t transmit(int fd) {
    return tls_.attached() ? tools::tls_write(tls_, out_.data(), out_.size())
                           : send(fd, out_.data(), out_.size(), MSG_NOSIGNAL);
  }

  // Splits what stdin gave into lines (a final line without '\n' counts at end of input).
  void read_stdin() {
    char chunk[kReadChunk];
    const ssize_t n = read(STDIN_FILENO, chunk, sizeof chunk);
    if (n < 0) {
      if (errno == EINTR || errno == EAGAIN) return;
      error(std::string("reading stdin: ") + std::strerror(errno));
      stdin_eof_ = true;
    } else if (n == 0) {
      stdin_eof_ = true;
    } else {
      stdin_buffer_.append(chunk, static_cast<size_t>(n));
    }
    size_t start = 0;
    for (size_t newline; (newline = stdin_buffer_.find('\n', start)) != std::string::npos; start = newline + 1) {
      pending_.push_back(stdin_buffer_.substr(start, newline - start));
    }
    stdin_buffer_.erase(0, start);
    if (stdin_buffer_.size() >= kMaxLine || (stdin_eof_ && !stdin_buffer_.empty())) {
      pending_.push_back(std::move(stdin_buffer_));
      stdin_buffer_.clear();
    }
  }

  // Turns queued input lines into messages while the connection is open.
  void send_pending() {
    // Chat: typed lines wait for the welcome and the rejoins' recovery (chat_reconnect.h).
    while (!pending_.empty() && session_.phase() == SessionPhase::kOpen && !quit_ &&
           (!chat_mode() || reconnect_.ready())) {
      std::string line = std::move(pending_.front());
      pending_.pop_front();
      if (chat_mode()) {
        send_chat_line(line);
        continue;
      }
      if (!line.empty() && line.back() == '\r') line.pop_back();
      // RFC 6455 8.1: text messages are UTF-8; the server would fail the connection (1007).
      if (!protocol::utf8_is_valid(line)) {
        error("a line is not valid UTF-8; not sent");
        continue;
      }
      session_.send_text(line, out_);
    }
  }

  void send_chat_line(const std::string& line) {
    ChatCommandParse parse = parse_chat_command(line, current_room_);
    if (!parse.ok) {
      std::fprintf(stderr, "! %s\n", parse.error.c_str());
      return;
    }
    const ChatCommand& command = parse.command;
    switch (command.kind) {
      case ChatCommandKind::kNone:
        return;
      case ChatCommandKind::kHelp:
        std::fwrite(chat_help_text().data(), 1, chat_help_text().size(), stderr);
        return;
      case ChatCommandKind::kQuit:
        quit_ = true;
        return;
      case ChatCommandKind::kJoin:
        current_room_ = command.room;  // plain text goes here from now on, even before the reply
        break;
      case ChatCommandKind::kLeave:
        std::erase(rooms_, command.room);
        if (current_room_ == command.room) current_room_ = rooms_.empty() ? std::string() : rooms_.back();
        break;
      default:
        break;
    }
    session_.send_text(reconnect_.send(command), out_);
  }

  void show_message(const SessionEvent& event) {
    if (event.kind == SessionEvent::Kind::kBinary) {
      std::string text = "<binary " + std::to_string(event.data.size()) + " bytes";
      if (!event.data.empty()) {
        text += ": ";
        static constexpr char kHex[] = "0123456789abcdef";
        for (size_t i = 0; i < std::min(event.data.size(), kMaxHexBytes); ++i) {
          text += kHex[static_cast<uint8_t>(event.data[i]) >> 4];
          text += kHex[static_cast<uint8_t>(event.data[i]) & 15];
        }
        if (event.data.size() > kMaxHexBytes) text += "...";
      }
      print(text + ">\n");
      return;
    }
    if (!chat_mode()) {
      print(event.data + "\n");
      return;
    }
    ServerEvent server_event = formatter_.format(event.data);
    // A history reply means the server has us in that room (join and history both send one):
    // those are the rooms to rejoin after a reconnect.
    if (server_event.type == "history" && !server_event.room.empty() &&
        std::find(rooms_.begin(), rooms_.end(), server_event.room) == rooms_.end()) {
      rooms_.push_back(server_event.room);
    }
    print(server_event.display);
    for (const std::string& reply : reconnect_.on_event(server_event, options_.chat_name, rooms_)) {
      session_.send_text(reply, out_);
    }
  }

  // Reacts to session events; sets finish_ once the attempt's outcome is known.
  void handle(std::vector<SessionEvent>& events) {
    for (SessionEvent& event : events) {
      switch (event.kind) {
        case SessionEvent::Kind::kOpen: {
          opened_ = true;
          // wss: a reconnect offers this session (its ticket came before the 101).
          if (tls_.attached()) tls_context_->keep_session(tls_.native());
          backoff_.on_connected(now_ms());
          std::string line = "connected to " + options_.url_text;
          if (!session_.subprotocol().empty()) line += " (subprotocol " + session_.subprotocol() + ")";
          status(line);
          // Chat: hello (resuming the session when a token is known); the rooms are rejoined
          // and unacked messages resent once the welcome comes (chat_reconnect.h).
          if (chat_mode()) session_.send_text(reconnect_.hello(options_.chat_name), out_);
          break;
        }
        case SessionEvent::Kind::kText:
        case SessionEvent::Kind::kBinary:
          show_message(event);
          break;
        case SessionEvent::Kind::kClose:
          if (session_.closed_by_us()) {
            finish_ = exit_with(kExitClean, "closed " + describe_close(event.code, event.data));
          } else if (is_transient_close(event.code)) {
            finish_ = retry_because("the server closed the connection: " + describe_close(event.code, event.data));
          } else if (event.code == protocol::kCloseNormal || event.code == protocol::kCloseNoStatus) {
            finish_ = exit_with(kExitClean, "the server closed the connection: " + describe_close(event.code, event.data));
          } else {
            finish_ = exit_with(kExitFailure, "the server closed the connection: " + describe_close(event.code, event.data));
          }
          close_deadline_ = SteadyClock::now() + kCloseTimeout;
          break;
        case SessionEvent::Kind::kFailed:
          // A refused handshake is worth retrying only when the server says it is temporary.
          if (event.code >= 500 || event.code == 429) {
            finish_ = retry_because(event.data);
          } else {
            finish_ = exit_with(kExitFailure, event.data);
          }
          break;
        case SessionEvent::Kind::kDropped:
          if (session_.closed_by_us()) {
            finish_ = exit_with(kExitClean, event.data);
          } else {
            finish_ = retry_because(event.data);
          }
          break;
      }
    }
    events.clear();
  }

  // Reads until EAGAIN; feeds the session.
  void read_socket(int fd, std::vector<SessionEvent>& events) {
    for (;;) {
      const ssize_t n = receive(fd);
      if (n > 0) {
        session_.feed(read_buffer_.data(), static_cast<size_t>(n), out_, events);
        handle(events);
        if (session_.phase() == SessionPhase::kFailed) return;
        continue;
      }
      if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
      eof_ = true;
      if (n < 0 && session_.phase() != SessionPhase::kClosed && !finish_) {
        // A reset: report the errno rather than a bare "lost".
        const std::string why = std::string("connection error: ") + std::strerror(errno);
        session_.on_end_of_stream(events);
        for (SessionEvent& event : events) event.data = why;
      } else {
        session_.on_end_of_stream(events);
      }
      handle(events);
      return;
    }
  }

  // Writes what the kernel takes; false on a write error (the peer is gone).
  bool write_socket(int fd) {
    while (!out_.empty()) {
      const ssize_t n = transmit(fd);
      if (n > 0) {
        out_.erase(0, static_cast<size_t>(n));
        continue;
      }
      if (n < 0 && (errno == EAGAIN || errno == EINTR)) return true;
      return false;
    }
    return true;
  }

  // One connection: connect, handshake, exchange messages until the connection ends.
  Outcome attempt() {
    const auto connect_deadline = SteadyClock::now() + options_.connect_timeout;
    std::string why;
    bool interrupted = false;
    const int fd = connect_socket(connect_deadline, why, interrupted);
    if (interrupted) return exit_with(kExitFailure, "interrupted before the connection opened");
    if (fd < 0) return retry_because(why);
    if (tls_context_) {
      bool fatal = false;
      const bool ok = tls_handshake(fd, connect_deadline, why, fatal, interrupted);
      if (!ok) {
        tls_.release();
        close(fd);
        if (interrupted) return exit_with(kExitFailure, "interrupted before the connection opened");
        return fatal ? exit_with(kExitFailure, why) : retry_because(why);
      }
    }
    out_.clear();
    reconnect_.on_connection_lost();
    session_.start(out_);
    finish_.reset();
    opened_ = false;
    eof_ = false;
    close_deadline_.reset();
    std::vector<SessionEvent> events;
    Outcome outcome = loop(fd, connect_deadline, events);
    tls_.shutdown();  // close_notify (RFC 8446 6.1), when the session is still usable
    tls_.release();
    close(fd);
    if (opened_) backoff_.on_disconnected(now_ms());
    return outcome;
  }

  Outcome loop(int fd, SteadyClock::time_point handshake_deadline, std::vector<SessionEvent>& events) {
    for (;;) {
      const SessionPhase phase = session_.phase();
      // Done: the outcome is known, nothing is left to send (or it cannot be), and either the
      // stream ended or there is no point waiting for it (a failed connection is closed at once).
      if (finish_ && (out_.empty() || write_failed_) && (eof_ || phase == SessionPhase::kFailed)) {
        write_failed_ = false;
        return *finish_;
      }
      if (phase == SessionPhase::kOpen) {
        send_pending();
        if (quit_ || (stdin_eof_ && pending_.empty())) {
          session_.send_close(protocol::kCloseNormal, {}, out_);
          close_deadline_ = SteadyClock::now() + kCloseTimeout;
        }
      }
      if (!out_.empty() && !write_socket(fd)) {
        write_failed_ = true;
        if (!eof_) {
          eof_ = true;
          session_.on_end_of_stream(events);
          handle(events);
        }
        continue;
      }

      std::optional<SteadyClock::time_point> deadline;
      if (session_.phase() == SessionPhase::kHandshake) deadline = handshake_deadline;
      if (close_deadline_) deadline = *close_deadline_;
      int timeout = -1;
      if (deadline) {
        const auto left = std::chrono::duration_cast<milliseconds>(*deadline - SteadyClock::now());
        if (left.count() <= 0) return on_timeout();
        timeout = static_cast<int>(left.count()) + 1;
      }

      pollfd fds[3];
      nfds_t count = 0;
      // TLS: a read that stalled on a full socket waits for POLLOUT too.
      const bool want_out = !out_.empty() || tls_.read_wants_write();
      fds[count++] = {fd, static_cast<short>(POLLIN | (want_out ? POLLOUT : 0)), 0};
      fds[count++] = {signal_fd_, POLLIN, 0};
      const bool want_stdin = session_.phase() == SessionPhase::kOpen && !stdin_eof_ && !quit_ &&
                              pending_.empty() && out_.size() < kMaxQueuedOutput;
      if (want_stdin) fds[count++] = {STDIN_FILENO, POLLIN, 0};
      const int n = poll(fds, count, timeout);
      if (n < 0) {
        if (errno == EINTR) continue;
        return exit_with(kExitFailure, std::string("poll: ") + std::strerror(errno));
      }
      if (fds[1].revents != 0 && take_signal()) {
        if (++interrupts_ > 1) return exit_with(kExitInterrupted, "interrupted again; quitting without a close handshake");
        if (session_.phase() == SessionPhase::kHandshake) return exit_with(kExitFailure, "interrupted before the connection opened");
        quit_ = true;  // the close goes out at the top of the loop
      }
      if (fds[0].revents != 0) read_socket(fd, events);
      if (want_stdin && fds[2].revents != 0) read_stdin();
    }
  }

  Outcome on_timeout() {
    switch (session_.phase()) {
      case SessionPhase::kHandshake:
        return retry_because("no handshake response within " + std::to_string(options_.connect_timeout.count()) + " ms");
      case SessionPhase::kClosing:
        // We asked to close; a server that does not answer does not make it less clean for us.
        return exit_with(kExitClean, "no close frame from the server within " +
                                         std::to_string(kCloseTimeout.count()) + " ms; closed anyway");
      default:
        // kClosed: the server did not end the stream after the close handshake; end it here.
        return finish_ ? *finish_ : exit_with(kExitClean);
    }
  }

  const CliOptions& options_;
  const int signal_fd_;
  ClientSession session_;
  std::unique_ptr<reactor::TlsContext> tls_context_;  // wss:// only
  reactor::TlsStream tls_;                           // wss://: this attempt's session
  Backoff backoff_;
  ServerMessageFormatter formatter_;
  std::vector<uint8_t> read_buffer_;
  std::string out_;                 // bytes for the socket, not yet written
  std::string stdin_buffer_;        // a partial input line
  std::deque<std::string> pending_; // input lines not yet sent
  std::optional<Outcome> finish_;   // how this attempt ends, once known
  std::optional<SteadyClock::time_point> close_deadline_;
  std::string current_room_;        // chat: where plain text goes
  std::vector<std::string> rooms_;  // chat: rooms the server confirmed, to rejoin after a reconnect
  ChatReconnect reconnect_{random_id_prefix()};  // chat: resume token, seqs seen, unacked sends
  int interrupts_ = 0;
  bool stdin_eof_ = false;
  bool quit_ = false;       // the user asked to close (Ctrl-C, /quit)
  bool opened_ = false;     // this attempt got its 101
  bool eof_ = false;        // this attempt's stream ended
  bool write_failed_ = false;
};

}  // namespace

int main(int argc, char** argv) {
  const CliOptionsParse parse = parse_cli_options(argc, argv);
  if (parse.status == CliOptionsParse::Status::kHelp) {
    std::fwrite(cli_usage().data(), 1, cli_usage().size(), stdout);
    return kExitClean;
  }
  if (parse.status == CliOptionsParse::Status::kUsageError) {
    std::fprintf(stderr, "parley-cli: %s (try --help)\n", parse.error.c_str());
    return 2;
  }
  // Ctrl-C and SIGTERM become readable events, so they start a close handshake instead of
  // killing the process mid-frame.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  if (sigprocmask(SIG_BLOCK, &signals, nullptr) != 0) {
    std::fprintf(stderr, "parley-cli: sigprocmask: %s\n", std::strerror(errno));
    return kExitFailure;
  }
  const int signal_fd = signalfd(-1, &signals, SFD_NONBLOCK | SFD_CLOEXEC);
  if (signal_fd < 0) {
    std::fprintf(stderr, "parley-cli: signalfd: %s\n", std::strerror(errno));
    return kExitFailure;
  }
  signal(SIGPIPE, SIG_IGN);
  Client client(parse.options, signal_fd);
  const int code = client.run();
  close(signal_fd);
  return code;
}
