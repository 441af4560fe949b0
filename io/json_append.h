// Large JSON objects (headers, indexes, descriptions of 100k+ tensors) built in linear time.
// ordered_json keeps insertion order by searching every key linearly on insert, which is
// quadratic over a whole checkpoint; these append a member whose key the caller knows is new.
#pragma once

#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

namespace ms2vllm {

// `object` must be an object or null (which becomes one).
inline void AppendNewMember(nlohmann::ordered_json& object, std::string key, nlohmann::ordered_json value) {
  if (object.is_null()) object = nlohmann::ordered_json::object();
  // ordered_map is a vector: its own emplace_back appends without the key search.
  object.get_ref<nlohmann::ordered_json::object_t&>().emplace_back(std::move(key), std::move(value));
}

// `text` as a JSON string, quotes included, escaped byte for byte as ordered_json::dump() does.
inline std::string JsonQuoted(std::string_view text) { return nlohmann::ordered_json(std::string(text)).dump(); }

// Appends `"key":value` to the text of an object being written ("{" ... "}" are the caller's),
// byte for byte as ordered_json::dump() writes a member, without a DOM of the whole object.
inline void AppendMemberText(std::string& object_text, const std::string& key, const nlohmann::ordered_json& value) {
  if (object_text.back() != '{') object_text += ',';
  object_text += JsonQuoted(key);
  object_text += ':';
  object_text += value.dump();
}

}  // namespace ms2vllm
