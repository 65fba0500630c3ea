/* The compiled decode set as a Python type: copies of its columns, its method table and the module
 * ``simulator.native._decode_set`` (the operations are in decode_set.c). */
#include <string.h>

#include "buffers.h"
#include "decode_set.h"

/* ---- views of the columns (copies) --------------------------------------------------------------- */
static PyObject *copy_i64(DS *s, const int64_t *a, const int64_t *minus) {
    int64_t *out;
    PyObject *arr = ss_new_array(s->n, ss_dt_i64, (void **)&out);
    if (!arr) return NULL;
    for (Py_ssize_t i = 0; i < s->n; i++) out[i] = minus ? a[i] - minus[i] : a[i];
    return arr;
}

static PyObject *copy_f64(DS *s, const double *a) {
    double *out;
    PyObject *arr = ss_new_array(s->n, ss_dt_f64, (void **)&out);
    if (!arr) return NULL;
    if (s->n) memcpy(out, a, s->n * sizeof(double));
    return arr;
}

static PyObject *DS_left(DS *s, PyObject *unused) { return copy_i64(s, s->end, s->kv); }

static PyObject *DS_finished(DS *s, PyObject *unused) {
    char *out;
    PyObject *arr = ss_new_array(s->n, ss_dt_bool, (void **)&out);
    if (!arr) return NULL;
    for (Py_ssize_t i = 0; i < s->n; i++) out[i] = s->kv[i] >= s->end[i];
    return arr;
}

static PyObject *get_ids(DS *s, void *c) { return copy_i64(s, s->ids, NULL); }
static PyObject *get_kv(DS *s, void *c) { return copy_i64(s, s->kv, NULL); }
static PyObject *get_off(DS *s, void *c) { return copy_i64(s, s->off, NULL); }
static PyObject *get_end(DS *s, void *c) { return copy_i64(s, s->end, NULL); }
static PyObject *get_held(DS *s, void *c) { return copy_i64(s, s->held, NULL); }
static PyObject *get_last(DS *s, void *c) { return copy_f64(s, s->last); }
static PyObject *get_maxitl(DS *s, void *c) { return copy_f64(s, s->maxitl); }
static PyObject *get_n(DS *s, void *c) { return PyLong_FromSsize_t(s->n); }
static PyObject *get_kv_sum(DS *s, void *c) { return PyLong_FromLongLong(s->kv_sum); }
static PyObject *get_held_sum(DS *s, void *c) { return PyLong_FromLongLong(s->held_sum); }
static PyObject *get_left_min(DS *s, void *c) { return PyLong_FromLongLong(s->left_min); }
static PyObject *get_bs(DS *s, void *c) { return PyLong_FromLongLong(s->bs); }
static PyObject *get_loop(DS *s, void *c) { return PyLong_FromSsize_t(s->loop); }
static PyObject *get_pool(DS *s, void *c) { Py_INCREF(s->pool); return s->pool; }
static PyObject *get_itl(DS *s, void *c) { Py_INCREF(s->itl); return s->itl; }

static Py_ssize_t DS_len(DS *s) { return s->n; }

static PyGetSetDef DS_getset[] = {
    {"ids", (getter)get_ids, NULL, "members' request ids (a copy)", NULL},
    {"kv", (getter)get_kv, NULL, "members' cached tokens (a copy)", NULL},
    {"off", (getter)get_off, NULL, "generated - kv per member (a copy)", NULL},
    {"end", (getter)get_end, NULL, "kv at which each member has its last token (a copy)", NULL},
    {"held", (getter)get_held, NULL, "members' KV blocks (a copy)", NULL},
    {"last", (getter)get_last, NULL, "members' last token times, seconds (a copy)", NULL},
    {"maxitl", (getter)get_maxitl, NULL, "members' longest token gaps, seconds (a copy)", NULL},
    {"n", (getter)get_n, NULL, "members", NULL},
    {"kv_sum", (getter)get_kv_sum, NULL, "cached tokens of all members", NULL},
    {"held_sum", (getter)get_held_sum, NULL, "blocks held by all members", NULL},
    {"left_min", (getter)get_left_min, NULL, "fewest tokens any member has still to generate", NULL},
    {"bs", (getter)get_bs, NULL, "block size, tokens", NULL},
    {"loop", (getter)get_loop, NULL, "the scheduler loop's index in the ITL log", NULL},
    {"pool", (getter)get_pool, NULL, "the replica's block pool", NULL},
    {"itl", (getter)get_itl, NULL, "the ITL log", NULL},
    {NULL}};

static PyMethodDef DS_methods[] = {
    {"add", (PyCFunction)DS_add, METH_O, "Requests that start decoding (their global columns are current)."},
    {"remove", (PyCFunction)DS_remove, METH_O, "Members selected by a mask leave (written back first); their ids."},
    {"remove_finished", (PyCFunction)DS_remove_finished, METH_NOARGS, "Members that have their last token leave; their ids."},
    {"write_back", (PyCFunction)DS_write_back, METH_VARARGS, "Copy members' columns to the global ones; their ids."},
    {"finished", (PyCFunction)DS_finished, METH_NOARGS, "Mask of the members that have generated their last token."},
    {"left", (PyCFunction)DS_left, METH_NOARGS, "Tokens each member has still to generate."},
    {"extra_blocks", (PyCFunction)DS_extra_blocks, METH_O, "Blocks beyond those held that `steps` more steps need."},
    {"reserve", (PyCFunction)DS_reserve, METH_O, "Take the blocks the next `steps` steps need; False if short."},
    {"hold", (PyCFunction)DS_hold, METH_O, "Raise members' blocks to a target; False (nothing taken) if short."},
    {"grow", (PyCFunction)DS_grow, METH_NOARGS, "Take the blocks the current KV lengths need beyond those held."},
    {"ctx_sums", (PyCFunction)DS_ctx_sums, METH_VARARGS, "(sum of KV read, sum capped at the window) of a step `extra` steps ahead."},
    {"advance", (PyCFunction)(void (*)(void))DS_advance, METH_FASTCALL, "`steps` decode steps done, the last at t_end."},
    {"advance_tokens", (PyCFunction)DS_advance_tokens, METH_VARARGS, "Steps done in which member i got tokens[i] tokens."},
    {NULL}};

static PySequenceMethods DS_seq = {.sq_length = (lenfunc)DS_len};

static PyTypeObject DSType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "simulator.native._decode_set.DecodeSet",
    .tp_basicsize = sizeof(DS),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "The requests one scheduler loop is decoding (compiled; see decode_set.PyDecodeSet).",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)DS_init,
    .tp_dealloc = (destructor)DS_dealloc,
    .tp_methods = DS_methods,
    .tp_getset = DS_getset,
    .tp_as_sequence = &DS_seq,
};

static struct PyModuleDef moddef = {PyModuleDef_HEAD_INIT, "_decode_set",
                                    "The decode set of a scheduler loop, compiled.", -1, NULL};

PyMODINIT_FUNC PyInit__decode_set(void) {
    if (ss_buffers_init() < 0) return NULL;
    if (PyType_Ready(&DSType) < 0) return NULL;
    PyObject *m = PyModule_Create(&moddef);
    if (!m) return NULL;
    Py_INCREF(&DSType);
    if (PyModule_AddObject(m, "DecodeSet", (PyObject *)&DSType) < 0) { Py_DECREF(&DSType); Py_DECREF(m); return NULL; }
    return m;
}
