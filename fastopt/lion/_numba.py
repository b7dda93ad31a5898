"""Lion, Numba twin of :func:`fastopt.lion.reference.lion_update`; maths in :mod:`fastopt.lion`.

Each array element is read once into a local and each result stored once, as in every fastopt loop.
"""

from numba import prange

from .._jit import jit_kernel, require_lengths


@jit_kernel
def lion_update(param, grad, exp_avg, maximize, decay_factor, beta1, one_minus_beta1, lr, beta2,
                one_minus_beta2, num_threads):
    # every array this step touches has param's length (the loop below is unchecked)
    require_lengths("lion_update", param, "grad exp_avg", (grad, exp_avg))
    # sign's values in the arrays' dtype (a literal 1.0 would be float64 and promote float32 maths)
    one, zero = param.dtype.type(1.0), param.dtype.type(0.0)
    for i in prange(param.shape[0]):  # iterations are independent: safe to split across threads
        m = exp_avg[i]
        d = -grad[i] if maximize else grad[i]                                        # (1)
        p = param[i] * decay_factor                                                  # (2)
        x = beta1 * m + one_minus_beta1 * d
        # np.sign's rule: 1, -1, 0 for either zero (+0.0), and NaN stays NaN; written as selects
        # (branches on random signs mispredict, and only AVX-512 vectorised the nested form)
        c = (one if x > 0 else zero) - (one if x < 0 else zero)                      # (3)
        c = x if x != x else c                                                       # (3)
        param[i] = p - lr * c                                                        # (4)
        exp_avg[i] = beta2 * m + one_minus_beta2 * d                                 # (5)
