// The sandbox's file system side on a real temporary tree: listing, the
// symlink-safe removal, private directories, and the inotify tree watch.
#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <map>

#include "sys/fs.hpp"
#include "sys/inotify.hpp"

namespace reclaim::sys {
namespace {

// A fresh directory under $TMPDIR (or /tmp), removed afterwards.
class TempDir {
 public:
  TempDir() {
    const char* base = std::getenv("TMPDIR");
    std::string templ = std::string(base && *base ? base : "/tmp") + "/reclaim-fs-test-XXXXXX";
    std::vector<char> buf(templ.begin(), templ.end());
    buf.push_back('\0');
    if (::mkdtemp(buf.data()) != nullptr) path_ = buf.data();
  }
  ~TempDir() {
    if (!path_.empty()) remove_tree(path_);
  }
  const std::string& path() const { return path_; }
  std::string operator/(const std::string& rel) const { return path_ + "/" + rel; }

 private:
  std::string path_;
};

void write_file(const std::string& path, std::size_t bytes) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  ASSERT_GE(fd, 0) << path << ": " << std::strerror(errno);
  std::string content(bytes, 'x');
  ASSERT_EQ(::write(fd, content.data(), content.size()), static_cast<ssize_t>(bytes));
  ::close(fd);
}

// Binds a unix socket at `path` (leaves the socket file in place).
void make_socket(const std::string& path) {
  int s = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(s, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  ASSERT_LT(path.size(), sizeof addr.sun_path);
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  ASSERT_EQ(::bind(s, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0) << std::strerror(errno);
  ::close(s);
}

bool exists(const std::string& path) {
  struct stat st {};
  return ::lstat(path.c_str(), &st) == 0;
}

// sandbox/                     outside/ (must survive)
//   cache.bin (4096 bytes)       precious (file)
//   fifo
//   sock
//   escape -> ../outside  (symlink to a directory outside)
//   sub/
//     nested.txt (10 bytes)
//     locked/ (mode 0)
//       hidden (3 bytes)
struct Fixture {
  TempDir dir;
  std::string sandbox = dir / "sandbox";
  std::string outside = dir / "outside";

  void build() {
    ASSERT_EQ(::mkdir(sandbox.c_str(), 0700), 0);
    ASSERT_EQ(::mkdir(outside.c_str(), 0700), 0);
    write_file(outside + "/precious", 5);
    write_file(sandbox + "/cache.bin", 4096);
    ASSERT_EQ(::mkfifo((sandbox + "/fifo").c_str(), 0600), 0);
    make_socket(sandbox + "/sock");
    ASSERT_EQ(::symlink(outside.c_str(), (sandbox + "/escape").c_str()), 0);
    ASSERT_EQ(::mkdir((sandbox + "/sub").c_str(), 0700), 0);
    write_file(sandbox + "/sub/nested.txt", 10);
    ASSERT_EQ(::mkdir((sandbox + "/sub/locked").c_str(), 0700), 0);
    write_file(sandbox + "/sub/locked/hidden", 3);
    ASSERT_EQ(::chmod((sandbox + "/sub/locked").c_str(), 0), 0);
  }
};

TEST(ListTree, EveryTypeNoSymlinkFollowed) {
  Fixture f;
  ASSERT_NO_FATAL_FAILURE(f.build());
  auto entries = list_tree(f.sandbox);
  std::map<std::string, FileEntry> by_path;
  for (const auto& e : entries) by_path[e.path] = e;
  ASSERT_TRUE(by_path.count("cache.bin"));
  EXPECT_EQ(by_path["cache.bin"].type, "file");
  EXPECT_EQ(by_path["cache.bin"].size, 4096u);
  EXPECT_EQ(by_path["fifo"].type, "fifo");
  EXPECT_EQ(by_path["sock"].type, "socket");
  EXPECT_EQ(by_path["escape"].type, "symlink");
  EXPECT_EQ(by_path["sub"].type, "dir");
  EXPECT_EQ(by_path["sub/nested.txt"].size, 10u);
  EXPECT_EQ(by_path["sub/locked"].type, "dir");
  // Nothing from behind the symlink.
  EXPECT_FALSE(by_path.count("escape/precious"));
  for (const auto& e : entries) EXPECT_EQ(e.path.find("precious"), std::string::npos) << e.path;
  if (::geteuid() == 0) {
    // root can read a 0-mode directory; others see it but not inside it.
    EXPECT_TRUE(by_path.count("sub/locked/hidden"));
    EXPECT_EQ(entries.size(), 8u);
  }
  // Parents come before their children.
  auto pos = [&](const std::string& p) {
    for (std::size_t i = 0; i < entries.size(); ++i)
      if (entries[i].path == p) return i;
    return entries.size();
  };
  EXPECT_LT(pos("sub"), pos("sub/nested.txt"));
}

TEST(ListTree, MissingRootAndSymlinkRootAreEmpty) {
  TempDir dir;
  EXPECT_TRUE(list_tree(dir / "nope").empty());
  ASSERT_EQ(::mkdir((dir / "real").c_str(), 0700), 0);
  write_file(dir / "real/x", 1);
  ASSERT_EQ(::symlink((dir / "real").c_str(), (dir / "link").c_str()), 0);
  EXPECT_EQ(list_tree(dir / "real").size(), 1u);
  EXPECT_TRUE(list_tree(dir / "link").empty());
  EXPECT_TRUE(list_tree(dir.path() + "/real/x").empty());  // not a directory
}

TEST(RemoveTree, RemovesEverythingButNeverFollowsTheSymlink) {
  Fixture f;
  ASSERT_NO_FATAL_FAILURE(f.build());
  EXPECT_FALSE(remove_tree(f.sandbox));
  EXPECT_FALSE(exists(f.sandbox));
  EXPECT_TRUE(exists(f.outside + "/precious"));
  EXPECT_TRUE(exists(f.outside));
}

TEST(RemoveTree, KeepRootEmptiesIt) {
  Fixture f;
  ASSERT_NO_FATAL_FAILURE(f.build());
  EXPECT_FALSE(remove_tree(f.sandbox, /*keep_root=*/true));
  EXPECT_TRUE(exists(f.sandbox));
  EXPECT_TRUE(list_tree(f.sandbox).empty());
  EXPECT_TRUE(exists(f.outside + "/precious"));
}

TEST(RemoveTree, MissingRootIsSuccessSymlinkRootIsRefused) {
  TempDir dir;
  EXPECT_FALSE(remove_tree(dir / "nope"));
  ASSERT_EQ(::mkdir((dir / "target").c_str(), 0700), 0);
  write_file(dir / "target/keep", 1);
  ASSERT_EQ(::symlink((dir / "target").c_str(), (dir / "link").c_str()), 0);
  auto ec = remove_tree(dir / "link");
  EXPECT_TRUE(ec);
  EXPECT_TRUE(exists(dir / "target/keep"));
  EXPECT_TRUE(exists(dir / "link"));
}

TEST(MakePrivateDir, CreatesParentsWithMode0700) {
  TempDir dir;
  std::string p = dir / "a/b/c";
  EXPECT_FALSE(make_private_dir(p));
  struct stat st {};
  ASSERT_EQ(::lstat(p.c_str(), &st), 0);
  EXPECT_TRUE(S_ISDIR(st.st_mode));
  EXPECT_EQ(st.st_mode & 07777, 0700u);
  ASSERT_EQ(::lstat((dir / "a").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0700u);
}

TEST(MakePrivateDir, ExistingOwnDirIsAcceptedAndTightened) {
  TempDir dir;
  std::string p = dir / "mine";
  ASSERT_EQ(::mkdir(p.c_str(), 0755), 0);
  ASSERT_EQ(::chmod(p.c_str(), 0755), 0);
  EXPECT_FALSE(make_private_dir(p));
  struct stat st {};
  ASSERT_EQ(::lstat(p.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0700u);
}

TEST(MakePrivateDir, RefusesFilesSymlinksAndForeignDirs) {
  TempDir dir;
  write_file(dir / "file", 1);
  EXPECT_EQ(make_private_dir(dir / "file").value(), EEXIST);
  ASSERT_EQ(::mkdir((dir / "real").c_str(), 0700), 0);
  ASSERT_EQ(::symlink((dir / "real").c_str(), (dir / "link").c_str()), 0);
  EXPECT_EQ(make_private_dir(dir / "link").value(), EEXIST);
  if (::geteuid() == 0) {
    ASSERT_EQ(::mkdir((dir / "foreign").c_str(), 0700), 0);
    ASSERT_EQ(::chown((dir / "foreign").c_str(), 65534, 65534), 0);
    EXPECT_EQ(make_private_dir(dir / "foreign").value(), EPERM);
  }
}

// ---- TreeWatch -----------------------------------------------------------------

// Waits (poll with a deadline, no sleep) until the watch reports a change.
bool changed_within(TreeWatch& w, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    if (w.drain()) return true;
    auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return false;
    pollfd p{w.fd(), POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left.count())) < 0 && errno != EINTR) return false;
  }
}

TEST(TreeWatch, SeesCreateAndDeleteAtEveryDepth) {
  TempDir dir;
  ASSERT_EQ(::mkdir((dir / "pre").c_str(), 0700), 0);  // existed before the watch
  auto w = TreeWatch::open(dir.path());
  ASSERT_TRUE(w) << w.error().message();
  EXPECT_EQ(w->watched(), 2u);
  EXPECT_FALSE(w->drain());  // nothing yet

  write_file(dir / "a", 1);
  EXPECT_TRUE(changed_within(*w, std::chrono::seconds(5)));
  EXPECT_FALSE(w->drain());

  write_file(dir / "pre/b", 1);
  EXPECT_TRUE(changed_within(*w, std::chrono::seconds(5)));

  // A directory created after the watch is watched as it appears.
  ASSERT_EQ(::mkdir((dir / "new").c_str(), 0700), 0);
  EXPECT_TRUE(changed_within(*w, std::chrono::seconds(5)));
  EXPECT_EQ(w->watched(), 3u);
  write_file(dir / "new/c", 1);
  EXPECT_TRUE(changed_within(*w, std::chrono::seconds(5)));

  ASSERT_EQ(::unlink((dir / "new/c").c_str()), 0);
  EXPECT_TRUE(changed_within(*w, std::chrono::seconds(5)));
  ASSERT_EQ(::unlink((dir / "a").c_str()), 0);
  EXPECT_TRUE(changed_within(*w, std::chrono::seconds(5)));
  EXPECT_FALSE(w->drain());
}

TEST(TreeWatch, DoesNotFollowSymlinkedDirectories) {
  TempDir dir;
  ASSERT_EQ(::mkdir((dir / "watched").c_str(), 0700), 0);
  ASSERT_EQ(::mkdir((dir / "outside").c_str(), 0700), 0);
  ASSERT_EQ(::symlink((dir / "outside").c_str(), (dir / "watched/link").c_str()), 0);
  auto w = TreeWatch::open(dir / "watched");
  ASSERT_TRUE(w);
  EXPECT_EQ(w->watched(), 1u);
  write_file(dir / "outside/x", 1);
  EXPECT_FALSE(w->drain());
  EXPECT_FALSE(changed_within(*w, std::chrono::milliseconds(50)));
}

TEST(TreeWatch, MissingRootIsAnError) {
  TempDir dir;
  auto w = TreeWatch::open(dir / "nope");
  ASSERT_FALSE(w);
  EXPECT_EQ(w.error().value(), ENOENT);
}

}  // namespace
}  // namespace reclaim::sys
