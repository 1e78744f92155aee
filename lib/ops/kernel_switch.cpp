#include "ops/kernel_switch.h"

#include <cstdlib>
#include <cstring>

namespace lsync::ops {

bool KernelSwitch::enabled() {
    int v = state_.load(std::memory_order_relaxed);
    if (v < 0) {
        const char* env = std::getenv(env_name_);
        if (on_by_default_)
            v = (env && std::strcmp(env, "0") == 0) ? 0 : 1;
        else
            v = (env && std::strcmp(env, "1") == 0) ? 1 : 0;
        int expected = -1;
        if (!state_.compare_exchange_strong(expected, v)) v = expected;  // a set() or another reader came first
    }
    return v == 1;
}

}  // namespace lsync::ops
