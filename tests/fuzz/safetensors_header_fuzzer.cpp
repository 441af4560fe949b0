// libFuzzer target: ParseSafetensorsHeader on a whole file's bytes. Beyond the sanitizers,
// an accepted header must describe tensors that tile the data exactly and lie in the file,
// and every tensor's bytes are read, so ASan sees any range that escapes the buffer; read in
// runs of a few bytes, the header gives the same result as read whole.
#include <cstdint>
#include <cstring>
#include <vector>

#include "io/safetensors_header.h"
#include "tests/fuzz/fuzz_checks.h"

using ms2vllm::fuzz::Require;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  // A copy of exactly `size` bytes: ASan then flags any read past the end of the file.
  std::vector<uint8_t> file(data, data + size);
  auto result = ms2vllm::ParseSafetensorsHeader(ms2vllm::fuzz::kLabel, file, 3);
  // Read in runs of a few members (io/object_members.h), the header must give the same result.
  const size_t run_bytes = size == 0 ? 0 : data[size - 1] % 64;
  auto in_runs = ms2vllm::ParseSafetensorsHeader(ms2vllm::fuzz::kLabel, file, 3, run_bytes);
  Require(in_runs.ok() == result.ok(), "read in runs, the header is judged otherwise");
  if (result.ok()) {
    Require(in_runs->tensors.size() == result->tensors.size(), "read in runs, the tensor count differs");
    for (size_t i = 0; i < result->tensors.size(); ++i) {
      const auto &a = result->tensors[i], &b = in_runs->tensors[i];
      Require(a.name == b.name && a.shape == b.shape && a.file_offset == b.file_offset, "read in runs, a tensor differs",
              a.name);
    }
  }
  if (!result.ok()) {
    ms2vllm::fuzz::CheckError(result.error());
    return 0;
  }
  const auto& header = *result;
  Require(header.data_start >= 8 && header.data_start <= size, "data_start outside the file");
  uint64_t total = 0;
  uint8_t checksum = 0;
  for (const auto& tensor : header.tensors) {
    Require(tensor.shard == 3, "shard not stored");
    Require(tensor.file_offset >= header.data_start, "tensor starts inside the header", tensor.name);
    Require(tensor.byte_size <= size - tensor.file_offset, "tensor runs past the end", tensor.name);
    uint64_t bytes = ms2vllm::DTypeSize(tensor.dtype);
    for (uint64_t d : tensor.shape) Require(!__builtin_mul_overflow(bytes, d, &bytes), "shape overflows", tensor.name);
    Require(bytes == tensor.byte_size, "byte size is not shape x dtype", tensor.name);
    Require(tensor.numel() * ms2vllm::DTypeSize(tensor.dtype) == tensor.byte_size, "numel disagrees", tensor.name);
    for (uint64_t i = 0; i < tensor.byte_size; ++i) checksum ^= file[tensor.file_offset + i];
    total += tensor.byte_size;
  }
  Require(total == size - header.data_start, "tensors do not tile the data");
  static volatile uint8_t sink;
  sink = checksum;  // keeps the reads
  return 0;
}
