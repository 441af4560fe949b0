#include "engine/synth_writer.h"

#include <chrono>

#include "engine/cancel.h"
#include "engine/layout.h"
#include "io/durable_file.h"
#include "io/json_file.h"
#include "io/staging.h"

namespace ms2vllm {

Result<SynthReport> WriteSynthCheckpoint(const SynthRequest& request) {
  const auto start = std::chrono::steady_clock::now();
  const std::atomic<bool>* cancel = request.execution.cancel;
  MS2VLLM_ASSIGN_OR_RETURN(SynthCheckpoint checkpoint, BuildSynthCheckpoint(request.options, cancel));
  std::string tag = "w";  // built in steps: GCC 12 warns falsely (-Wrestrict) on "w" + to_string(...) + "a16"
  tag += std::to_string(request.options.bits);
  tag += "a16";
  const std::string prefix = "quant_model_weight_" + tag;
  MS2VLLM_ASSIGN_OR_RETURN(const Layout layout,
                           ComputeLayout(checkpoint.plan, prefix + ".safetensors", request.max_shard_bytes, prefix, cancel));

  MS2VLLM_ASSIGN_OR_RETURN(Staging staging,
                           Staging::ForDirectory(request.out_dir, request.force, EarlierOutput::kSynthetic));
  {
    std::vector<OutputFile> outputs;
    for (const auto& file : layout.files) {
      MS2VLLM_ASSIGN_OR_RETURN(OutputFile output, OutputFile::Create(staging.PathFor(file.name), file.size));
      outputs.push_back(std::move(output));
    }
    MS2VLLM_TRY(Execute(checkpoint.plan, layout, nullptr, outputs, request.execution));
    for (auto& output : outputs) MS2VLLM_TRY(output.Finish());
  }
  SynthReport report;
  const std::string weights_name = layout.files.size() == 1 ? layout.files[0].name : prefix + ".safetensors.index.json";
  if (layout.files.size() > 1) {
    MS2VLLM_TRY(WriteShardIndex(staging.PathFor(weights_name), checkpoint.plan, layout));
  }
  const std::string description_name = "quant_model_description_" + tag + ".json";
  MS2VLLM_TRY(WriteJsonFile(staging.PathFor(description_name), checkpoint.description));
  MS2VLLM_TRY(WriteJsonFile(staging.PathFor("config.json"), checkpoint.config));
  // What lets a later `synth --force` replace this directory, and nothing from msModelSlim.
  MS2VLLM_TRY(WriteFileDurably(staging.PathFor(std::string(kSynthMarker)),
                               "Random weights written by `ms2vllm synth`, not a trained model; `synth --force` may replace this "
                               "directory.\n"));
  if (Cancelled(cancel)) return Interrupted();
  MS2VLLM_TRY(staging.Commit());
  report.weights = staging.target() / weights_name;
  report.description = staging.target() / description_name;
  for (const auto& file : layout.files) report.bytes += file.size;
  report.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return report;
}

}  // namespace ms2vllm
