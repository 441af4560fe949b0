// Plan and offset-scan errors begin with what they are about: a tensor, a linear, the
// description file, or nothing in particular. The command's one error line must also name a
// file, so the callers of the plan pass its errors through here.
#pragma once

#include "io/checkpoint.h"
#include "io/description.h"
#include "io/status.h"

namespace ms2vllm {

// Prefixes the file the error is about: the shard holding a named tensor, else the weights as
// given (index or file). An error that already begins with the description's path is left as is.
Error NamingTheFile(Error error, const Checkpoint& checkpoint, const Description& description);

}  // namespace ms2vllm
