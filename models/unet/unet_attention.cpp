#include "unet/unet_attention.h"

#include "ops/geglu.h"
#include "unet/row_slices.h"

#include <algorithm>

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

namespace {

// The parts' weights as one matrix without a copy, when they already lie back to back in one storage, row blocks
// of one dense matrix (models::place_parameters puts them so); undefined otherwise.
torch::Tensor abutting_rows(const std::vector<Linear*>& parts) {
    const auto& first = (*parts.front())->weight;
    if (first.dim() != 2 || !first.is_contiguous()) return {};
    const int64_t cols = first.size(1);
    int64_t rows = 0;
    for (auto* p : parts) {
        const auto& w = (*p)->weight;
        if (w.dim() != 2 || !w.is_contiguous() || w.size(1) != cols || w.scalar_type() != first.scalar_type() ||
            w.storage().unsafeGetStorageImpl() != first.storage().unsafeGetStorageImpl() ||
            w.storage_offset() != first.storage_offset() + rows * cols)
            return {};
        rows += w.size(0);
    }
    return first.as_strided({rows, cols}, {cols, 1});
}

}  // namespace

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
        stacked = abutting_rows(parts);
        if (!stacked.defined()) {
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
    }
    return torch::linear(input, stacked);
}

torch::Tensor AttentionImpl::forward(const torch::Tensor& x, const std::optional<torch::Tensor>& context,
                                     const std::optional<torch::Tensor>& key_bias, const torch::Tensor& key_counts) {
    // Sequences are independent: bound the q/k/v, attention output and projection temporaries by slicing dim 0.
    const int64_t n = x.size(0), lq = x.size(1), lk = context ? context->size(1) : lq;
    const int64_t inner = to_q->weight.size(0);
    const int64_t per_sequence = (lq * (5 * inner + x.size(2)) + lk * 2 * inner) * x.element_size();
    const int64_t step = rows_per_slice(n, per_sequence);
    if (step >= n) return forward_rows(x, context, key_bias, key_counts);
    auto y = torch::empty({n, lq, out->weight.size(0)}, x.options());
    for (int64_t r = 0; r < n; r += step) {
        const int64_t m = std::min(step, n - r);
        std::optional<torch::Tensor> c, b;
        if (context) c = context->narrow(0, r, m);
        if (key_bias) b = key_bias->size(0) == 1 ? *key_bias : key_bias->narrow(0, r, m);
        const auto counts = key_counts.defined() ? key_counts.narrow(0, r, m) : key_counts;
        y.narrow(0, r, m).copy_(forward_rows(x.narrow(0, r, m), c, b, counts));
    }
    return y;
}

torch::Tensor AttentionImpl::forward_rows(const torch::Tensor& x, const std::optional<torch::Tensor>& context,
                                          const std::optional<torch::Tensor>& key_bias,
                                          const torch::Tensor& key_counts) {
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
    auto o = ctx_->attend(q, k, v, key_bias, key_counts);  // [N, H, Lq, D]
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
    // Tokens are independent: the 8C-wide projection and the 4C-wide GEGLU output are the big temporaries.
    const int64_t width = x.size(-1), rows = x.numel() / width;
    const int64_t step = rows_per_slice(rows, proj->weight.size(0) * 3 / 2 * x.element_size());
    if (step >= rows) return out(ops::geglu(proj(x)));
    const auto flat = x.reshape({rows, width});
    auto y = torch::empty({rows, out->weight.size(0)}, x.options());
    for (int64_t r = 0; r < rows; r += step) {
        const int64_t m = std::min(step, rows - r);
        // The output projection writes straight into its rows of y (bias broadcast by addmm).
        auto rows_out = y.narrow(0, r, m);
        torch::addmm_out(rows_out, out->bias, ops::geglu(proj(flat.narrow(0, r, m))), out->weight.t());
    }
    auto sizes = x.sizes().vec();
    sizes.back() = y.size(1);
    return y.view(sizes);
}

void set_attention_context(torch::nn::Module& module, const ops::AttentionContextPtr& ctx) {
    auto use = ctx ? ctx : ops::default_attention_context();
    for (auto& m : module.modules(/*include_self=*/true))
        if (auto* a = m->as<AttentionImpl>()) a->set_context(use);
}

}  // namespace lsync::models
