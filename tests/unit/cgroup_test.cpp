#include <gtest/gtest.h>

#include "sys/cgroup.hpp"

namespace reclaim::sys {
namespace {

TEST(CgroupTest, FindsTheCgroup2MountInMountsText) {
  // Captured from this machine's /proc/self/mounts (hybrid layout), shortened.
  const char* hybrid =
      "sysfs /sys sysfs rw,nosuid,nodev,noexec,relatime 0 0\n"
      "tmpfs /sys/fs/cgroup tmpfs ro,nosuid,nodev,noexec,mode=755 0 0\n"
      "cgroup2 /sys/fs/cgroup/unified cgroup2 rw,relatime 0 0\n"
      "cgroup /sys/fs/cgroup/memory cgroup rw,relatime,memory 0 0\n";
  EXPECT_EQ(parse_cgroup2_mount(hybrid), "/sys/fs/cgroup/unified");
  EXPECT_EQ(parse_cgroup2_mount("cgroup2 /sys/fs/cgroup cgroup2 rw,nsdelegate 0 0\n"), "/sys/fs/cgroup");
  EXPECT_EQ(parse_cgroup2_mount("cgroup /sys/fs/cgroup/cpu cgroup rw,cpu 0 0\n"), "");
  EXPECT_EQ(parse_cgroup2_mount(""), "");
}

TEST(CgroupTest, UnreadableCgroupListsNothing) {
  EXPECT_TRUE(cgroup_procs("/nonexistent/cgroup").empty());
  EXPECT_TRUE(cgroup_kill("/nonexistent/cgroup"));
}

}  // namespace
}  // namespace reclaim::sys
