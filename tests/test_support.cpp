#include "tests/test_support.h"

#include <gtest/gtest.h>
#include <linux/capability.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>

#include "io/checkpoint.h"
#include "kernels/float_convert.h"

namespace ms2vllm::testing {
namespace fs = std::filesystem;

std::vector<std::string> Ms2vllmArgv() {
  std::vector<std::string> argv;
  std::istringstream launcher(MS2VLLM_LAUNCHER);
  for (std::string word; launcher >> word;) argv.push_back(word);
  argv.push_back(MS2VLLM_BINARY);
  return argv;
}

std::string Ms2vllmCommandLine() {
  std::string line;
  for (const auto& word : Ms2vllmArgv()) line += (line.empty() ? "" : " ") + word;
  return line;
}

fs::path GoldenDir() { return fs::path(MS2VLLM_SOURCE_DIR) / "tests" / "golden"; }

std::vector<std::string> GoldenCases() {
  std::vector<std::string> cases;
  for (const auto& entry : fs::directory_iterator(GoldenDir())) {
    if (entry.is_directory()) cases.push_back(entry.path().filename().string());
  }
  std::sort(cases.begin(), cases.end());
  return cases;
}

TempDir::TempDir() {
  std::string pattern = (fs::temp_directory_path() / "ms2vllm-test-XXXXXX").string();
  path_ = ::mkdtemp(pattern.data());
}

TempDir::~TempDir() {
  std::error_code ec;
  fs::remove_all(path_, ec);
}

std::map<std::string, LoadedTensor> LoadTensors(const fs::path& path) {
  std::map<std::string, LoadedTensor> tensors;
  auto checkpoint = Checkpoint::Open(path);
  EXPECT_TRUE(checkpoint.ok()) << (checkpoint.ok() ? "" : checkpoint.error().message);
  if (!checkpoint) return tensors;
  for (const auto& info : checkpoint->table().tensors()) {
    const auto bytes = checkpoint->Bytes(info);
    tensors[info.name] = {info.dtype, info.shape, std::vector<uint8_t>(bytes.begin(), bytes.end())};
  }
  return tensors;
}

std::string HeaderMetadata(const fs::path& path) {
  const std::string text = ReadText(path);
  uint64_t size = 0;
  std::memcpy(&size, text.data(), 8);
  auto header = nlohmann::json::parse(text.substr(8, size));
  return header.contains("__metadata__") ? header["__metadata__"].dump() : "";
}

void WriteSafetensors(const fs::path& path, const std::vector<std::pair<std::string, LoadedTensor>>& tensors) {
  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  uint64_t offset = 0;
  std::string data;
  for (const auto& [name, tensor] : tensors) {
    header[name] = {{"dtype", DTypeName(tensor.dtype)}, {"shape", tensor.shape},
                    {"data_offsets", {offset, offset + tensor.bytes.size()}}};
    offset += tensor.bytes.size();
    data.append(tensor.bytes.begin(), tensor.bytes.end());
  }
  std::string json = header.dump();
  const uint64_t size = json.size();
  std::string file(8, '\0');
  std::memcpy(file.data(), &size, 8);
  WriteText(path, file + json + data);
}

void WriteText(const fs::path& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary);
  out << text;
}

std::string ReadText(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

std::vector<int32_t> Words(const LoadedTensor& tensor) {
  std::vector<int32_t> words(tensor.bytes.size() / 4);
  std::memcpy(words.data(), tensor.bytes.data(), words.size() * 4);
  return words;
}

}  // namespace ms2vllm::testing

// ---- msModelSlim checkpoints and consumer views ----

namespace ms2vllm::testing {
namespace {

constexpr int kAwqOrder[8] = {0, 2, 4, 6, 1, 3, 5, 7};

template <typename T>
void Store(std::vector<uint8_t>& bytes, uint64_t i, T value) {
  std::memcpy(bytes.data() + i * sizeof(T), &value, sizeof(T));
}

template <typename T>
T Load(const std::vector<uint8_t>& bytes, uint64_t i) {
  T value;
  std::memcpy(&value, bytes.data() + i * sizeof(T), sizeof(T));
  return value;
}

int64_t ClampSigned(int64_t value, int bits) {
  const int64_t low = -(int64_t{1} << (bits - 1)), high = (int64_t{1} << (bits - 1)) - 1;
  return std::clamp(value, low, high);
}

// Field `j` of `bits` bits of an I32 word, unsigned.
uint32_t Field(int32_t word, int bits, uint64_t j) {
  return (static_cast<uint32_t>(word) >> (bits * j)) & ((1u << bits) - 1);
}

}  // namespace

uint64_t Numel(const LoadedTensor& tensor) {
  uint64_t n = 1;
  for (uint64_t d : tensor.shape) n *= d;
  return n;
}

LoadedTensor MakeTensor(DType dtype, std::vector<uint64_t> shape, const std::vector<double>& values) {
  LoadedTensor tensor{dtype, std::move(shape), {}};
  EXPECT_EQ(Numel(tensor), values.size());
  tensor.bytes.resize(values.size() * DTypeSize(dtype));
  for (uint64_t i = 0; i < values.size(); ++i) {
    const double v = values[i];
    switch (dtype) {
      case DType::kF64: Store(tensor.bytes, i, v); break;
      case DType::kF32: Store(tensor.bytes, i, static_cast<float>(v)); break;
      case DType::kF16: Store(tensor.bytes, i, kernels::FloatToHalf(static_cast<float>(v))); break;
      case DType::kBF16: Store(tensor.bytes, i, kernels::FloatToBFloat16(static_cast<float>(v))); break;
      case DType::kI8: Store(tensor.bytes, i, static_cast<int8_t>(v)); break;
      case DType::kU8: Store(tensor.bytes, i, static_cast<uint8_t>(v)); break;
      case DType::kI16: Store(tensor.bytes, i, static_cast<int16_t>(v)); break;
      case DType::kI32: Store(tensor.bytes, i, static_cast<int32_t>(v)); break;
      case DType::kI64: Store(tensor.bytes, i, static_cast<int64_t>(v)); break;
      default: ADD_FAILURE() << "MakeTensor: unsupported dtype " << DTypeName(dtype); return tensor;
    }
  }
  return tensor;
}

std::vector<double> Elements(const LoadedTensor& tensor) {
  const uint64_t n = Numel(tensor);
  std::vector<double> values(n);
  for (uint64_t i = 0; i < n; ++i) {
    switch (tensor.dtype) {
      case DType::kF64: values[i] = Load<double>(tensor.bytes, i); break;
      case DType::kF32: values[i] = Load<float>(tensor.bytes, i); break;
      case DType::kF16: values[i] = kernels::HalfToFloat(Load<uint16_t>(tensor.bytes, i)); break;
      case DType::kBF16: values[i] = kernels::BFloat16ToFloat(Load<uint16_t>(tensor.bytes, i)); break;
      case DType::kI8: values[i] = Load<int8_t>(tensor.bytes, i); break;
      case DType::kU8: values[i] = Load<uint8_t>(tensor.bytes, i); break;
      case DType::kI16: values[i] = Load<int16_t>(tensor.bytes, i); break;
      case DType::kI32: values[i] = Load<int32_t>(tensor.bytes, i); break;
      case DType::kI64: values[i] = static_cast<double>(Load<int64_t>(tensor.bytes, i)); break;
      default: ADD_FAILURE() << "Elements: unsupported dtype " << DTypeName(tensor.dtype); return values;
    }
  }
  return values;
}

MsLinear MakeMsLinear(const MsLinearOptions& o) {
  std::mt19937_64 rng(o.seed);
  const int64_t low = -(int64_t{1} << (o.bits - 1)), high = (int64_t{1} << (o.bits - 1)) - 1;
  std::uniform_int_distribution<int64_t> weight_value(low, high);
  std::uniform_int_distribution<int64_t> offset_value(o.offset_low.value_or(low + 1), o.offset_high.value_or(high));
  std::uniform_real_distribution<double> scale_value(1e-3, 0.25);
  std::vector<double> weight(o.out * o.in), scale(o.out * o.groups), offset(o.out * o.groups);
  for (auto& v : weight) v = static_cast<double>(weight_value(rng));
  for (auto& v : scale) v = scale_value(rng);
  for (auto& v : offset) v = static_cast<double>(offset_value(rng));
  MsLinear linear{MakeTensor(DType::kI8, {o.out, o.in}, weight), MakeTensor(o.scale_dtype, {o.out, o.groups}, scale),
                  std::nullopt};
  if (o.with_offset) linear.offset = MakeTensor(o.offset_dtype.value_or(o.scale_dtype), {o.out, o.groups}, offset);
  return linear;
}

std::vector<double> DequantizeMsModelSlim(const LoadedTensor& weight, const LoadedTensor& scale,
                                          const LoadedTensor* offset, int clamp_bits) {
  const uint64_t out = weight.shape.at(0), in = weight.shape.at(1);
  const uint64_t groups = Numel(scale) / out, group = in / groups;
  const auto q = Elements(weight), s = Elements(scale);
  const auto z = offset ? Elements(*offset) : std::vector<double>(s.size(), 0.0);
  std::vector<double> result(out * in);
  for (uint64_t o = 0; o < out; ++o) {
    for (uint64_t i = 0; i < in; ++i) {
      double qv = q[o * in + i], zv = z[o * groups + i / group];
      if (clamp_bits > 0) {
        qv = static_cast<double>(ClampSigned(static_cast<int64_t>(qv), clamp_bits));
        zv = static_cast<double>(ClampSigned(static_cast<int64_t>(zv), clamp_bits));
      }
      result[o * in + i] = (qv - zv) * s[o * groups + i / group];
    }
  }
  return result;
}

std::vector<double> DequantizeAwq(const LoadedTensor& qweight, const LoadedTensor& qzeros, const LoadedTensor& scales) {
  const uint64_t in = qweight.shape.at(0), out = qweight.shape.at(1) * 8;
  const uint64_t groups = scales.shape.at(0), group = in / groups;
  EXPECT_EQ(scales.shape.at(1), out);
  EXPECT_EQ(qzeros.shape, (std::vector<uint64_t>{groups, out / 8}));
  const auto qw = Words(qweight), qz = Words(qzeros);
  const auto s = Elements(scales);
  // ORDER[k] is the column of nibble k; the consumer inverts it.
  uint64_t nibble_of[8];
  for (uint64_t k = 0; k < 8; ++k) nibble_of[kAwqOrder[k]] = k;
  std::vector<double> result(out * in);
  for (uint64_t o = 0; o < out; ++o) {
    for (uint64_t i = 0; i < in; ++i) {
      const uint64_t g = i / group;
      const double q = Field(qw[i * (out / 8) + o / 8], 4, nibble_of[o % 8]);
      const double z = Field(qz[g * (out / 8) + o / 8], 4, nibble_of[o % 8]);
      result[o * in + i] = (q - z) * s[g * out + o];
    }
  }
  return result;
}

std::vector<double> DequantizeGptq(const LoadedTensor& qweight, const LoadedTensor& qzeros, const LoadedTensor& scales,
                                   int bits, bool v2) {
  const uint64_t p = 32 / bits;
  const uint64_t in = qweight.shape.at(0) * p, out = qweight.shape.at(1);
  const uint64_t groups = scales.shape.at(0), group = in / groups;
  EXPECT_EQ(scales.shape.at(1), out);
  EXPECT_EQ(qzeros.shape, (std::vector<uint64_t>{groups, out / p}));
  const auto qw = Words(qweight), qz = Words(qzeros);
  const auto s = Elements(scales);
  std::vector<double> result(out * in);
  for (uint64_t o = 0; o < out; ++o) {
    for (uint64_t i = 0; i < in; ++i) {
      const uint64_t g = i / group;
      const double q = Field(qw[(i / p) * out + o], bits, i % p);
      const double z = Field(qz[g * (out / p) + o / p], bits, o % p);
      result[o * in + i] = s[g * out + o] * (q - (v2 ? z : z + 1));
    }
  }
  return result;
}

void MsCheckpoint::Add(const std::string& name, LoadedTensor tensor, const std::string& label) {
  tensors_.emplace_back(name, std::move(tensor));
  description_[name] = label;
}

void MsCheckpoint::AddUndescribed(const std::string& name, LoadedTensor tensor) {
  tensors_.emplace_back(name, std::move(tensor));
}

void MsCheckpoint::AddLinear(const std::string& linear, const MsLinear& parts, const std::string& label) {
  Add(linear + ".weight", parts.weight, label);
  Add(linear + ".weight_scale", parts.scale, label);
  if (parts.offset) Add(linear + ".weight_offset", *parts.offset, label);
}

void MsCheckpoint::Describe(const std::string& key, nlohmann::ordered_json value) { description_[key] = std::move(value); }

void MsCheckpoint::WriteWeights(const fs::path& path) const { WriteSafetensors(path, tensors_); }

void MsCheckpoint::WriteDescription(const fs::path& path) const { WriteText(path, description_.dump(2)); }

fs::path MsCheckpoint::WriteInto(const fs::path& dir, int bits) const {
  const std::string suffix = "_w" + std::to_string(bits) + "a16";
  const fs::path weights = dir / ("quant_model_weight" + suffix + ".safetensors");
  WriteWeights(weights);
  WriteDescription(dir / ("quant_model_description" + suffix + ".json"));
  return weights;
}

const LoadedTensor& MsCheckpoint::tensor(const std::string& name) const {
  for (const auto& [tensor_name, tensor] : tensors_) {
    if (tensor_name == name) return tensor;
  }
  ADD_FAILURE() << "no tensor " << name;
  static const LoadedTensor kEmpty{};
  return kEmpty;
}

int RunWherePermissionsApply(const std::function<int()>& body) {
  const pid_t child = ::fork();
  if (child < 0) return -1;
  if (child == 0) {
    if (::geteuid() == 0) {
      __user_cap_header_struct header{_LINUX_CAPABILITY_VERSION_3, 0};
      __user_cap_data_struct caps[_LINUX_CAPABILITY_U32S_3]{};
      if (::syscall(SYS_capget, &header, caps) != 0) _exit(125);
      for (const int cap : {CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH}) caps[CAP_TO_INDEX(cap)].effective &= ~CAP_TO_MASK(cap);
      if (::syscall(SYS_capset, &header, caps) != 0) _exit(125);
    }
    _exit(body());
  }
  int status = 0;
  while (::waitpid(child, &status, 0) < 0) {
    if (errno != EINTR) return -1;
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

}  // namespace ms2vllm::testing
