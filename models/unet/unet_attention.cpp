#include "unet/unet_attention.h"

#include "ops/geglu.h"

namespace lsync::models {

AttentionImpl::AttentionImpl(int64_t query_dim, int64_t heads_, int64_t head_dim, int64_t context_dim)
    : heads(heads_) {
    const int64_t inner = heads * head_dim;
    const int64_t kv_dim = context_dim > 0 ? context_dim : query_dim;
    to_q = register_module("to_q", Linear(query_dim, inner, false));
    to_k = register_module("to_k", Linear(kv_dim, inner, false));
    to_v = register_module("to_v", Linear(kv_dim, inner, false));
    // Official: to_out = ModuleList([Linear, Dropout]); only index 0 holds weights.
    torch::nn::ModuleList to_out;
    out = Linear(inner, query_dim, true);
    to_out->push_back(out);
    register_module("to_out", to_out);
}

torch::Tensor AttentionImpl::stacked_projection(const torch::Tensor& input, const std::vector<Linear*>& parts,
                                                torch::Tensor& stacked) {
    // Current when every weight is still the view of its row block (same address, shape, dtype, device). Runs on
    // every attention call, so it compares addresses rather than making views.
    const auto is_block = [&](const torch::Tensor& w, int64_t row) {
        if (!stacked.defined() || w.dim() != 2 || row + w.size(0) > stacked.size(0) || w.size(1) != stacked.size(1) ||
            w.scalar_type() != stacked.scalar_type() || w.device() != stacked.device())
            return false;
        const auto* base = static_cast<const char*>(stacked.data_ptr());
        return w.data_ptr() == base + row * stacked.stride(0) * stacked.element_size();
    };
    bool current = true;
    int64_t row = 0;
    for (auto* p : parts) {
        current = current && is_block((*p)->weight, row);
        row += (*p)->weight.size(0);
    }
    if (!current || row != stacked.size(0)) {
        std::vector<torch::Tensor> ws;
        for (auto* p : parts) ws.push_back((*p)->weight);
        stacked = torch::cat(ws, 0);
        row = 0;
        for (auto* p : parts) {
            auto& w = (*p)->weight;
            const int64_t rows = w.size(0);
            w.set_(stacked.narrow(0, row, rows));
            row += rows;
        }
    }
    return torch::linear(input, stacked);
}

torch::Tensor AttentionImpl::forward(const torch::Tensor& x, const std::optional<torch::Tensor>& context,
                                     const std::optional<torch::Tensor>& key_bias) {
    // [N, L, H*D] -> [N, H, L, D]
    auto split = [this](const torch::Tensor& t) {
        return t.reshape({t.size(0), t.size(1), heads, -1}).transpose(1, 2);
    };
    const int64_t inner = to_q->weight.size(0);
    torch::Tensor q, k, v;
    if (!context) {
        const auto qkv = stacked_projection(x, {&to_q, &to_k, &to_v}, stacked_qkv_);
        q = split(qkv.narrow(-1, 0, inner));
        k = split(qkv.narrow(-1, inner, inner));
        v = split(qkv.narrow(-1, 2 * inner, inner));
    } else {
        const auto kv = stacked_projection(*context, {&to_k, &to_v}, stacked_kv_);
        q = split(to_q(x));
        k = split(kv.narrow(-1, 0, inner));
        v = split(kv.narrow(-1, inner, inner));
    }
    auto o = ctx_->attend(q, k, v, key_bias);  // [N, H, Lq, D]
    o = o.transpose(1, 2).reshape({x.size(0), x.size(1), -1});
    return out(o);
}

FeedForwardImpl::FeedForwardImpl(int64_t dim, int64_t mult) {
    const int64_t inner = dim * mult;
    // Official: net = ModuleList([GEGLU(proj), Dropout, Linear]); the indices are part of the key names.
    torch::nn::ModuleList net;
    auto geglu = std::make_shared<torch::nn::Module>();
    proj = Linear(dim, inner * 2, true);
    geglu->register_module("proj", proj);
    net->push_back(geglu);
    net->push_back(torch::nn::Identity());
    out = Linear(inner, dim, true);
    net->push_back(out);
    register_module("net", net);
}

torch::Tensor FeedForwardImpl::forward(const torch::Tensor& x) {
    return out(ops::geglu(proj(x)));
}

void set_attention_context(torch::nn::Module& module, const ops::AttentionContextPtr& ctx) {
    auto use = ctx ? ctx : ops::default_attention_context();
    for (auto& m : module.modules(/*include_self=*/true))
        if (auto* a = m->as<AttentionImpl>()) a->set_context(use);
}

}  // namespace lsync::models
