"""`borrowed(x)`: arrays inside a Numba kernel that hold no reference to their memory.

Numba counts the references to an array's memory with an atomic add each time a kernel makes a view of it
or hands it to an inlined helper, and a subtract when the view dies: a few nanoseconds each, paid per tile
and per packed block in the GEMM core's loops. A parallel kernel's loop body never pays (its arrays reach
it without a reference count); a serial one does, and ran a batch of 128 tiny products at half the speed of
the same code in a parallel kernel on one thread (the count was 45% of its time). The caller keeps the
arrays alive while the kernel runs.
"""
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic


def _without_owner(context, builder, typ, value):
    """value with its memory owner (and Python parent) cleared if it is an array; unchanged otherwise."""
    if not isinstance(typ, types.Array):
        return value
    view = context.make_array(typ)(context, builder, value=value)
    view.meminfo = cgutils.get_null_value(view.meminfo.type)
    view.parent = cgutils.get_null_value(view.parent.type)
    return view._getvalue()


@intrinsic
def borrowed(typingctx, x):
    """x, an array or a flat tuple, with every array in it owning nothing: its views count no references."""
    if not isinstance(x, (types.Array, types.BaseTuple)):
        return None

    def codegen(context, builder, sig, args):
        (typ,), (value,) = sig.args, args
        if isinstance(typ, types.Array):
            return _without_owner(context, builder, typ, value)
        for i, element in enumerate(typ):
            item = _without_owner(context, builder, element, builder.extract_value(value, i))
            value = builder.insert_value(value, item, i)
        return value

    return x(x), codegen
