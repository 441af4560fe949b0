// Keeps a mapped input file that another process cuts short from killing the process. Reading a
// mapped page past a file's new end raises SIGBUS; for an address inside a registered mapping the
// handler maps a page of zeros there, so the read completes, and marks the mapping as faulted. Its
// owner then reports the file as changed (MappedFile::CheckUnchanged) instead of using the zeros.
// A SIGBUS anywhere else keeps its default action.
#pragma once

#include <cstddef>

namespace ms2vllm::mapping_guard {

// Guards [begin, begin + size); installs the handler on first use. Any number of mappings.
void Register(const void* begin, size_t size);
void Unregister(const void* begin);
// Whether a read inside the mapping at `begin` has faulted since it was registered.
bool Faulted(const void* begin);

}  // namespace ms2vllm::mapping_guard
