// The sandbox's file system side: listing what a scenario left behind,
// removing it without ever following a planted symlink, and creating private
// directories.
#pragma once

#include <cstdint>
#include <string>
#include <system_error>
#include <vector>

namespace reclaim::sys {

struct FileEntry {
  std::string path;        // relative to the listed root, '/'-separated
  std::uint64_t size = 0;  // st_size (for a symlink: the length of its target)
  std::string type;        // file, dir, fifo, socket, symlink, char, block
};

// Every entry below `root`, recursively, parents before their children,
// siblings in name order. Never follows symlinks (openat O_NOFOLLOW|
// O_DIRECTORY, fstatat AT_SYMLINK_NOFOLLOW): a symlink is listed as a symlink.
// `root` itself is not listed. A missing or unreadable root gives an empty
// list; a sub-directory that cannot be opened is listed but not descended.
std::vector<FileEntry> list_tree(const std::string& root);

// Removes `root` and everything below it (or only its content when
// keep_root). Symlink-safe: works only with openat/unlinkat relative to
// directory descriptors opened with O_NOFOLLOW, so a symlink planted in the
// tree is removed as a link and its target is never touched. Directories with
// mode 0 are made searchable before descending. Does not descend into other
// file systems (a mount point inside the tree is left and reported).
// Keeps going after a failure and returns the first error; a root that does
// not exist is success. Errors: ENOTDIR/ELOOP when root is not a directory
// (e.g. a symlink), EXDEV for a mount point below root, else the errno of the
// failed openat/unlinkat.
std::error_code remove_tree(const std::string& root, bool keep_root = false);

// Creates `path` with mode 0700, creating missing parents (also 0700).
// When `path` already exists it is accepted only if it is "ours": a real
// directory (not a symlink) owned by the effective uid; its mode is then
// tightened to 0700. Errors: EEXIST when it exists but is not a directory,
// EPERM when it is owned by someone else, else the errno of mkdir.
std::error_code make_private_dir(const std::string& path);

}  // namespace reclaim::sys
