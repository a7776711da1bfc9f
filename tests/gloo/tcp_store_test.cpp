// The TCP store on its own: set/get/add/wait/check, timeouts that name the missing keys, several
// clients, and a client whose server went away.

#include <gtest/gtest.h>

#include <thread>

#include "engine/backends/tcp_store.hpp"
#include "engine/core/errors.hpp"
#include "gloo/multiprocess.hpp"

namespace twinspeed::backends {
namespace {

using std::chrono::milliseconds;

std::vector<std::uint8_t> bytes(const std::string& s) { return {s.begin(), s.end()}; }

TEST(TcpStore, SetGetAddWaitCheck) {
  TcpStoreServer server(0);
  TcpStore a({.port = server.port()}), b({.port = server.port()});
  a.set("k", bytes("hello"));
  EXPECT_EQ(b.get("k", milliseconds(100)), bytes("hello"));
  EXPECT_EQ(a.add("n", 2), 2);
  EXPECT_EQ(b.add("n", -5), -3);
  std::vector<std::string> keys{"k", "later"};
  EXPECT_FALSE(a.check(keys));
  EXPECT_EQ(a.missing(keys), std::vector<std::string>{"later"});
  std::thread setter([&] {
    std::this_thread::sleep_for(milliseconds(50));
    b.set("later", {});
  });
  a.wait(keys, milliseconds(2'000));  // woken by the other client's set
  setter.join();
  EXPECT_TRUE(a.check(keys));
  EXPECT_TRUE(a.get("later", milliseconds(10)).empty());
}

TEST(TcpStore, TimeoutsNameTheMissingKeys) {
  TcpStoreServer server(0);
  TcpStore a({.port = server.port()});
  a.set("here", {});
  std::vector<std::string> keys{"here", "absent"};
  try {
    a.wait(keys, milliseconds(50));
    FAIL();
  } catch (const CommError& e) {
    EXPECT_NE(std::string(e.what()).find("[absent]"), std::string::npos) << e.what();
  }
  EXPECT_THROW(a.get("absent", milliseconds(20)), CommError);
  a.set("after", bytes("x"));  // the connection still works after a timeout
  EXPECT_EQ(a.get("after", milliseconds(10)), bytes("x"));
}

TEST(TcpStore, ServerGoneIsAnErrorNotAHang) {
  auto server = std::make_unique<TcpStoreServer>(0);
  TcpStore a({.port = server->port(), .io_timeout = milliseconds(500)});
  a.set("k", {});
  server.reset();
  EXPECT_THROW(a.set("k", {}), CommError);
  EXPECT_THROW(a.get("k", milliseconds(10)), CommError);
}

TEST(TcpStore, UnreachableServerFailsAfterTheConnectTimeout) {
  const int port = testing::free_port();  // nothing listens there
  const auto start = std::chrono::steady_clock::now();
  try {
    TcpStore store({.host = "127.0.0.1", .port = port, .connect_timeout = milliseconds(200)});
    FAIL() << "connected to nothing";
  } catch (const CommError& e) {
    EXPECT_NE(std::string(e.what()).find("cannot reach the TCP store"), std::string::npos) << e.what();
  }
  EXPECT_LT(std::chrono::steady_clock::now() - start, milliseconds(2'000));
}

}  // namespace
}  // namespace twinspeed::backends
