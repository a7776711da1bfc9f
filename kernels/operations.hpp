// The kernels every backend implements, with their contracts: declared once, here, and included
// inside namespace twinspeed::kernels (the dispatching entry points, kernels/kernels.hpp),
// kernels::cpu (kernels/cpu/ops.hpp) and kernels::cuda (kernels/cuda/ops.hpp), so the three lists
// cannot drift apart. No include guard and no #include on purpose: the including header includes
// engine/core/buffer.hpp and the kernels/common parameter headers first, then this inside its
// namespace. Operand rules are in kernels/kernels.hpp.

void fill_zero(BufferView x);
// x *= float(factor).
void scale(BufferView x, double factor);
// Unscale with overflow check, in one pass: x *= float(factor), and true when any result (as
// stored, so a 16-bit overflow counts) is inf or NaN. An inf or NaN input always gives one.
bool unscale_and_check_overflow(BufferView x, double factor);
// dst = src, converting between floating dtypes. Same element count; same-dtype views may overlap.
void copy(BufferView dst, BufferView src);
// dst += src, converting as copy does (the sum is formed in fp32, then rounded to dst's dtype).
void accumulate(BufferView dst, BufferView src);
// Sum of x^2 in double (each fp32 square is exact in double; blocks combined in order).
double sum_of_squares(BufferView x);
// True when any element is inf or NaN (a bit test: no floating-point flag can remove it).
bool has_inf_or_nan(BufferView x);

// Multi-tensor L2 norm as DeepSpeed's multi_tensor_l2norm accumulates it: the squares of each
// block of kBlockElements elements of each view are summed in fp32, and the block sums are added
// in (view, block) order in double. squared_l2_norm is the sum before the square root (what is
// all-reduced across ranks).
double squared_l2_norm(std::span<const BufferView> views);

// DeepSpeed FusedAdam's update (kernels/common/adam.hpp), fused: one pass over the four operands.
void adam_step(BufferView params, BufferView grads, BufferView exp_avg, BufferView exp_avg_sq, const AdamParams& p);

// torch.optim.SGD's update (kernels/common/sgd.hpp); momentum_buffer is read only when momentum != 0.
void sgd_step(BufferView params, BufferView grads, BufferView momentum_buffer, const SgdParams& p);

// One LAMB step of one tensor (FusedLamb's unit: a parameter, or a ZeRO partition) and its trust
// ratio. Two passes: the moments and the sums of squares of p and of the update direction (fp32
// per block, blocks added in order in double, as squared_l2_norm), then the parameter step.
// Returns the trust ratio used (1 for an empty tensor).
float lamb_step(BufferView params, BufferView grads, BufferView exp_avg, BufferView exp_avg_sq, const LambParams& p);

// DeepSpeed FusedLion's update in one pass over params, grads and exp_avg.
void lion_step(BufferView params, BufferView grads, BufferView exp_avg, const LionParams& p);

// Adagrad (torch.optim.Adagrad, or DeepSpeedCPUAdagrad with decayed_numerator false) in one pass
// over params, grads and the running sum of squares.
void adagrad_step(BufferView params, BufferView grads, BufferView sum_of_squares, const AdagradParams& p);
