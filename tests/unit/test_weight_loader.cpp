#include "catch_compat.h"

#include "core/error.h"
#include "io/weight_loader.h"

#include <map>

using namespace lsync;
using namespace lsync::io;

namespace {

// A TensorSource over tensors in memory, so the loader is tested independently of any file format.
class MemorySource : public TensorSource {
public:
    explicit MemorySource(std::vector<std::pair<std::string, torch::Tensor>> t) : items_(std::move(t)) {
        for (const auto& [n, v] : items_)
            infos_.push_back({n, v.scalar_type(), v.sizes().vec(), static_cast<uint64_t>(v.nbytes())});
    }
    const std::string& path() const override { return path_; }
    std::string format() const override { return "memory"; }
    const std::vector<TensorInfo>& tensors() const override { return infos_; }
    bool contains(const std::string& name) const override {
        for (const auto& [n, v] : items_)
            if (n == name) return true;
        return false;
    }
    torch::Tensor load(const std::string& name) const override {
        ++loads;
        for (const auto& [n, v] : items_)
            if (n == name) return v;
        throw Error(ErrorCode::Weights, "no tensor " + name);
    }
    nlohmann::json metadata() const override { return {}; }
    mutable int loads = 0;

private:
    std::string path_ = "memory.safetensors";
    std::vector<std::pair<std::string, torch::Tensor>> items_;
    std::vector<TensorInfo> infos_;
};

// Registers children under PyTorch attribute names, as models/ does.
struct TinyNetImpl : torch::nn::Module {
    TinyNetImpl() {
        proj = register_module("proj", torch::nn::Linear(4, 3));
        norm = register_module("norm", torch::nn::BatchNorm1d(3));
        blocks = register_module("blocks", torch::nn::ModuleList(torch::nn::Linear(3, 3), torch::nn::Linear(3, 2)));
    }
    torch::nn::Linear proj{nullptr};
    torch::nn::BatchNorm1d norm{nullptr};
    torch::nn::ModuleList blocks{nullptr};
};
TORCH_MODULE(TinyNet);

std::vector<std::pair<std::string, torch::Tensor>> full_checkpoint() {
    std::vector<std::pair<std::string, torch::Tensor>> t;
    TinyNet reference;
    for (auto& p : reference->named_parameters(true)) t.emplace_back(p.key(), torch::randn(p.value().sizes()));
    for (auto& b : reference->named_buffers(true)) t.emplace_back(b.key(), b.value().clone().fill_(3));
    return t;
}

}  // namespace

TEST_CASE("a checkpoint with exactly the module's keys loads every tensor, cast once", "[weights]") {
    torch::manual_seed(5);
    const auto ckpt = full_checkpoint();
    MemorySource src(ckpt);
    TinyNet net;
    LoadPolicy policy;
    policy.dtype = torch::kDouble;
    const auto report = load_weights(*net, src, {}, policy, "TinyNet");
    CHECK(report.ok());
    CHECK(report.loaded.size() == ckpt.size());
    CHECK(src.loads == static_cast<int>(ckpt.size()));
    for (const auto& [name, value] : ckpt) {
        torch::Tensor slot;
        for (auto& p : net->named_parameters(true))
            if (p.key() == name) slot = p.value();
        for (auto& b : net->named_buffers(true))
            if (b.key() == name) slot = b.value();
        REQUIRE(slot.defined());
        INFO(name);
        CHECK(slot.data_ptr() != value.data_ptr());  // never aliases the source (file mappings are read-only)
        if (value.is_floating_point()) {
            CHECK(slot.scalar_type() == torch::kDouble);
            CHECK(torch::equal(slot, value.to(torch::kDouble)));
        } else {
            CHECK(slot.scalar_type() == value.scalar_type());  // num_batches_tracked stays int64
            CHECK(torch::equal(slot, value));
        }
    }
    // The module still works with its loaded parameters.
    auto y = net->blocks[1]->as<torch::nn::Linear>()->forward(torch::ones({1, 3}, torch::kDouble));
    CHECK(y.sizes() == torch::IntArrayRef({1, 2}));
}

TEST_CASE("strict loading reports missing, unexpected and mis-shaped keys by name", "[weights]") {
    auto ckpt = full_checkpoint();
    ckpt.erase(ckpt.begin());                                   // proj.weight missing
    ckpt.emplace_back("extra.weight", torch::zeros({2}));       // unexpected
    for (auto& [n, v] : ckpt)
        if (n == "blocks.1.bias") v = torch::zeros({5});        // wrong shape
    MemorySource src(ckpt);
    TinyNet net;
    try {
        load_weights(*net, src, {}, LoadPolicy{}, "TinyNet");
        FAIL("strict load accepted a bad checkpoint");
    } catch (const Error& e) {
        CHECK(e.code() == ErrorCode::Weights);
        const std::string msg = e.what();
        CHECK(msg.find("memory.safetensors") != std::string::npos);
        CHECK(msg.find("proj.weight") != std::string::npos);
        CHECK(msg.find("extra.weight") != std::string::npos);
        CHECK(msg.find("blocks.1.bias: checkpoint [5] vs TinyNet [2]") != std::string::npos);
    }
    CHECK(src.loads == 0);  // nothing is read before the checkpoint is known to fit

    LoadPolicy lenient;
    lenient.strict = false;
    const auto report = load_weights(*net, src, {}, lenient, "TinyNet");
    CHECK(report.missing.size() == 2);  // proj.weight and the mis-shaped blocks.1.bias
    CHECK(report.unexpected == std::vector<std::string>{"extra.weight"});
    CHECK(report.shape_mismatch.size() == 1);
}

TEST_CASE("rename rules map historical names, allowlists make tolerated gaps explicit", "[weights]") {
    std::vector<std::pair<std::string, torch::Tensor>> renamed;
    for (auto& [n, v] : full_checkpoint()) {
        std::string old = n;
        if (old.rfind("proj.", 0) == 0) old = "old_proj." + old.substr(5);
        renamed.emplace_back(old, v);
    }
    renamed.emplace_back("training_only.step", torch::zeros({1}));
    MemorySource src(renamed);
    TinyNet net;
    CHECK_THROWS_AS(load_weights(*net, src, {{"old_proj.", "proj."}}, LoadPolicy{}, "TinyNet"), Error);
    LoadPolicy policy;
    policy.allow_unexpected = {"training_only\\..*"};
    const auto report = load_weights(*net, src, {{"old_proj.", "proj."}}, policy, "TinyNet");
    CHECK(report.ok());
    CHECK(report.allowed == std::vector<std::string>{"training_only.step"});
    CHECK(apply_renames("a.audio_cross_attn.attn.to_q", {{"audio_cross_attn.attn", "attn2"}}) == "a.attn2.to_q");
}

TEST_CASE("parameters already on the device in the dtype (models::place_parameters) are written in place", "[weights]") {
    torch::manual_seed(6);
    const auto ckpt = full_checkpoint();
    MemorySource src(ckpt);
    TinyNet net;
    std::map<std::string, const void*> before;
    for (auto& p : net->named_parameters(true)) before[p.key()] = p.value().data_ptr();
    LoadPolicy policy;
    policy.dtype = torch::kFloat;  // what the module's parameters already are: in place
    REQUIRE(load_weights(*net, src, {}, policy, "TinyNet").ok());
    for (const auto& [name, value] : ckpt) {
        for (auto& p : net->named_parameters(true)) {
            if (p.key() != name) continue;
            INFO(name);
            CHECK(p.value().data_ptr() == before.at(name));  // the same memory, now holding the file's values
            CHECK(torch::equal(p.value(), value));
        }
    }
}
