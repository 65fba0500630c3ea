/* The memo key of a step's price, compiled: ``perf.shape.cost_key`` (the reference; read its
 * docstring). Counts pass through as the objects given; each context sum above 64 is rounded to
 * 2^(e/64) with e = round(log2(v)·64), rounding half to even as Python's round() does, with the
 * same libm calls as Python's math.log2 and float power, so both give identical keys.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>

#define STEPS 64
#define TABLE (64 * 64)

static PyObject *pow_table[TABLE];   /* 2^(e/64) as Python floats, made once */

/* quantize_value: None and values <= 64 unchanged, else the nearest of 64 steps per octave. */
static PyObject *quantize(PyObject *v) {
    if (v == Py_None) { Py_INCREF(v); return v; }
    double x = PyFloat_AsDouble(v);
    if (x == -1.0 && PyErr_Occurred()) return NULL;
    if (x <= 64.0) { Py_INCREF(v); return v; }
    if (isnan(x)) { PyErr_SetString(PyExc_ValueError, "cannot convert float NaN to integer"); return NULL; }
    double e = nearbyint(log2(x) * STEPS);   /* default rounding mode: half to even */
    if (!(e >= 0 && e < TABLE)) { PyErr_SetString(PyExc_IndexError, "list index out of range"); return NULL; }
    PyObject *r = pow_table[(Py_ssize_t)e];
    Py_INCREF(r);
    return r;
}

static PyObject *cost_key(PyObject *self, PyObject *shape) {
    if (!PyTuple_Check(shape)) {
        PyErr_Format(PyExc_TypeError, "cost_key takes a shape tuple, not %.100s", Py_TYPE(shape)->tp_name);
        return NULL;
    }
    Py_ssize_t n = PyTuple_GET_SIZE(shape);
    if (n != 10) {
        PyErr_Format(PyExc_TypeError, "cost_key takes a shape of 10 fields (%zd given)", n);
        return NULL;
    }
    PyObject *key = PyTuple_New(10);
    if (!key) return NULL;
    static const int rounded[10] = {0, 0, 1, 1, 0, 1, 1, 1, 1, 0};
    for (int i = 0; i < 10; i++) {
        PyObject *v = PyTuple_GET_ITEM(shape, i);
        if (rounded[i]) {
            v = quantize(v);
            if (!v) { Py_DECREF(key); return NULL; }
        } else {
            Py_INCREF(v);
        }
        PyTuple_SET_ITEM(key, i, v);
    }
    return key;
}

static PyMethodDef methods[] = {
    {"cost_key", (PyCFunction)cost_key, METH_O,
     "cost_key(shape): the memo key of a step's price; shape is a tuple of the ten BatchShape fields "
     "(prefill_tokens, prefill_seqs, prefill_pairs, prefill_kv, decode_seqs, decode_ctx, "
     "prefill_pairs_win, prefill_kv_win, decode_ctx_win, decode_q)."},
    {NULL}};

static struct PyModuleDef moddef = {PyModuleDef_HEAD_INIT, "_step_key", "The memo key of a step's price, compiled.",
                                    -1, methods};

PyMODINIT_FUNC PyInit__step_key(void) {
    for (int e = 0; e < TABLE; e++) {
        pow_table[e] = PyFloat_FromDouble(pow(2.0, (double)e / STEPS));
        if (!pow_table[e]) return NULL;
    }
    return PyModule_Create(&moddef);
}
