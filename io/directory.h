// Listing and removing directories without std::filesystem's error_code overloads: those are
// noexcept yet allocate, so running out of memory inside one ends the process (std::terminate)
// where the run should fail with its one error line and clean up.
#pragma once

#include <filesystem>
#include <vector>

#include "io/status.h"

namespace ms2vllm {

// The entries of `directory` (not . or ..), sorted. An unreadable directory is an input error
// naming it, or a resource error when the machine is out of memory or descriptors.
Result<std::vector<std::filesystem::path>> ListDirectory(const std::filesystem::path& directory);

// Removes `path` and, when it is a directory, everything under it, symlinks as links, without
// allocating (a run out of memory still removes its stage). A directory in it this user owns is
// emptied whatever its own mode (555 and 000 included). Best effort: what cannot be removed stays; true
// when nothing is left.
bool RemoveTree(const std::filesystem::path& path);

}  // namespace ms2vllm
