/* journal._fastappend: the lean Python entry point of one append (mmj_append / mmj_append_reserve),
 * and of write-ahead appends followed by a send (AppendSend, below).
 *
 * cffi's generated wrapper for mmj_append costs about 190 ns around a 30-50 ns append: its
 * API-mode wrappers are METH_VARARGS (a tuple built and unpacked per call), each of the seven
 * arguments is converted through a generic helper, errno is saved and restored, and the GIL is
 * always released and retaken (30-35 ns). An Appender binds the C function and the writer once
 * and is called with the five per-record values through vectorcall (no tuple); it keeps the
 * GIL across the append when the Python side says that is safe (pagecache mode, no Python sync
 * hook: nothing the append can block on then needs the GIL), and releases it otherwise (an msync
 * may take milliseconds). Keeping it, it calls the non-blocking variant (mmj_append_nowait) and,
 * when that could not append without waiting (the writer mutex held by an mmj_sync's fdatasync or
 * a roll, or a roll due), the blocking one with the GIL released: other Python threads never
 * stop behind the writer mutex. It returns exactly what the C function returns (a sequence >= 1 or a
 * negative mmj_status) and leaves typed errors to journal.writer; arguments it does not take as
 * they are (a payload that is not bytes, an integer out of the C parameter's range, a non-int)
 * raise TypeError or OverflowError, on which journal.writer takes its converting path. It knows
 * nothing of records; it never touches a writer after detach().
 *
 * An AppendSend is write-ahead in one call: it appends records (mmj_append, or
 * mmj_append_reserve for risk-reducing ones) and then, only if the journal took every one of
 * them, send()s a buffer on a socket descriptor the caller owns, so the records are in the
 * journal before the bytes reach the kernel and bytes whose records were refused never do
 * (Rule 1). It exists for the engine's urgent path (a quote guard's pre-encoded cancels), where
 * each Python step between the decision and the syscall costs microseconds on cold code. It does
 * what those Python calls do, no more: each record is stamped CLOCK_REALTIME just before its
 * append; the send loop is socket.sendall's (flags 0, partial sends continued, EINTR retried
 * after Python's signal handlers ran, any other error ends it), with the GIL released around
 * send() and, under the Appender's rule, around the appends. A refusal or a socket error is
 * returned, not raised: the caller turns them into its usual typed errors. It knows nothing of
 * record layouts, TX stamp keys or orders.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <errno.h>
#include <stdint.h>
#include <sys/socket.h>
#include <time.h>

#include "journal.h"

#ifndef Py_TPFLAGS_HAVE_VECTORCALL   /* its name before Python 3.12 */
#define Py_TPFLAGS_HAVE_VECTORCALL _Py_TPFLAGS_HAVE_VECTORCALL
#endif

typedef __typeof__(mmj_append) append_fn;

typedef struct {
    PyObject_HEAD
    vectorcallfunc vectorcall;
    append_fn *fn;
    append_fn *try_fn; /* its non-blocking variant (0: would wait), or NULL */
    mmj_writer *w;     /* NULL after detach(): the C function then returns MMJ_E_CLOSED */
    int keep_gil;
} Appender;

/* an Appender (fn: mmj_append) that also sends; the Appender's methods serve it as they are */
typedef struct {
    Appender base;
    append_fn *reserve_fn;       /* mmj_append_reserve */
    append_fn *reserve_try_fn;   /* its non-blocking variant, or NULL */
    int64_t send_entered_ns;     /* CLOCK_MONOTONIC just before the last call's first send() */
} AppendSend;

/* an int argument within [low, high] of its C parameter, as cffi would accept it */
static int take_int(PyObject *o, long long low, long long high, long long *out)
{
    if (!PyLong_Check(o)) {
        PyErr_SetString(PyExc_TypeError, "an integer is required");
        return -1;
    }
    int overflow;
    long long v = PyLong_AsLongLongAndOverflow(o, &overflow);
    if (overflow || v < low || v > high) {
        PyErr_SetString(PyExc_OverflowError, "integer out of range");
        return -1;
    }
    *out = v;
    return 0;
}

static PyObject *appender_call(PyObject *self_obj, PyObject *const *args, size_t nargsf, PyObject *kwnames)
{
    Appender *self = (Appender *)self_obj;
    Py_ssize_t nargs = PyVectorcall_NARGS(nargsf);
    if (nargs != 5 || (kwnames && PyTuple_GET_SIZE(kwnames))) {
        PyErr_SetString(PyExc_TypeError, "Appender takes (rtype, payload, ts_ns, ts_source, clock_state)");
        return NULL;
    }
    if (!PyBytes_Check(args[1])) {
        PyErr_SetString(PyExc_TypeError, "payload must be bytes");
        return NULL;
    }
    long long rtype, ts, source, state;
    if (take_int(args[0], 0, UINT32_MAX, &rtype) || take_int(args[2], INT64_MIN, INT64_MAX, &ts) ||
        take_int(args[3], 0, UINT32_MAX, &source) || take_int(args[4], 0, UINT32_MAX, &state))
        return NULL;
    const char *payload = PyBytes_AS_STRING(args[1]);
    uint64_t len = (uint64_t)PyBytes_GET_SIZE(args[1]);
    int64_t seq;
    if (self->keep_gil && self->try_fn) {
        seq = self->try_fn(self->w, (uint32_t)rtype, payload, len, ts, (uint32_t)source, (uint32_t)state);
        if (seq == 0) {   /* it would wait: not while holding the GIL */
            Py_BEGIN_ALLOW_THREADS
            seq = self->fn(self->w, (uint32_t)rtype, payload, len, ts, (uint32_t)source, (uint32_t)state);
            Py_END_ALLOW_THREADS
        }
    } else if (self->keep_gil) {
        seq = self->fn(self->w, (uint32_t)rtype, payload, len, ts, (uint32_t)source, (uint32_t)state);
    } else {
        Py_BEGIN_ALLOW_THREADS
        seq = self->fn(self->w, (uint32_t)rtype, payload, len, ts, (uint32_t)source, (uint32_t)state);
        Py_END_ALLOW_THREADS
    }
    return PyLong_FromLongLong(seq);
}

static PyObject *appender_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    unsigned long long fn, w, try_fn = 0;
    int keep_gil;
    if (!PyArg_ParseTuple(args, "KKp|K:Appender", &fn, &w, &keep_gil, &try_fn))
        return NULL;
    if (!fn || !w) {
        PyErr_SetString(PyExc_ValueError, "Appender needs the C function's and the writer's addresses");
        return NULL;
    }
    Appender *self = (Appender *)type->tp_alloc(type, 0);
    if (!self)
        return NULL;
    self->vectorcall = appender_call;
    self->fn = (append_fn *)(uintptr_t)fn;
    self->try_fn = (append_fn *)(uintptr_t)try_fn;
    self->w = (mmj_writer *)(uintptr_t)w;
    self->keep_gil = keep_gil;
    return (PyObject *)self;
}

static int64_t clock_ns(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* an int argument within [low, high], as the Appender takes it */
/* Append the payloads in order, stopping at the first refusal. Returns the number appended;
 * their sequences go to seqs, and *status gets 0 or the refused append's negative mmj_status (0
 * too when a non-blocking variant stopped where it would have waited). */
static Py_ssize_t append_all(AppendSend *self /* the bound writer */, append_fn *fn /* which append */,
                             uint32_t rtype /* record type */, PyObject *const *payloads /* bytes */,
                             Py_ssize_t n /* payload count */, uint32_t source /* ts source */,
                             uint32_t state /* clock state */, int64_t *seqs /* OUT, n slots */,
                             int64_t *status /* OUT */)
{
    Py_ssize_t done = 0;
    *status = 0;
    for (; done < n; done++) {
        const char *p = PyBytes_AS_STRING(payloads[done]);
        uint64_t len = (uint64_t)PyBytes_GET_SIZE(payloads[done]);
        int64_t seq = fn(self->base.w, rtype, p, len, clock_ns(CLOCK_REALTIME), source, state);
        if (seq <= 0) {   /* 0: a non-blocking variant would have waited */
            *status = seq;
            break;
        }
        seqs[done] = seq;
    }
    return done;
}

/* socket.sendall(data) on fd: 0 when every byte went, else the errno that ended it; -1 with a
 * Python exception set when a signal handler raised during an EINTR. */
static int send_all(int fd /* the caller's connected socket */, const char *buf /* bytes */,
                    Py_ssize_t len /* byte count, > 0 */)
{
    Py_ssize_t off = 0;
    while (off < len) {
        ssize_t n;
        int err;
        Py_BEGIN_ALLOW_THREADS
        n = send(fd, buf + off, (size_t)(len - off), 0);
        err = errno;
        Py_END_ALLOW_THREADS
        if (n >= 0) {
            off += n;
            continue;
        }
        if (err != EINTR)
            return err;
        if (PyErr_CheckSignals() < 0)
            return -1;
    }
    return 0;
}

static PyObject *append_send_call(PyObject *self_obj, PyObject *const *args, size_t nargsf, PyObject *kwnames)
{
    AppendSend *self = (AppendSend *)self_obj;
    if (PyVectorcall_NARGS(nargsf) != 7 || (kwnames && PyTuple_GET_SIZE(kwnames))) {
        PyErr_SetString(PyExc_TypeError, "AppendSend takes (rtype, payloads, ts_source, clock_state, reserve, "
                                         "fd, data)");
        return NULL;
    }
    /* every argument is checked before the first append: an error never leaves half a call done */
    long long rtype, source, state, fd;
    if (take_int(args[0], 0, UINT32_MAX, &rtype) || take_int(args[2], 0, UINT32_MAX, &source) ||
        take_int(args[3], 0, UINT32_MAX, &state) || take_int(args[5], 0, INT32_MAX, &fd))
        return NULL;
    int reserve = PyObject_IsTrue(args[4]);
    if (reserve < 0)
        return NULL;
    PyObject *list = args[1];
    if (!PyList_CheckExact(list) && !PyTuple_CheckExact(list)) {
        PyErr_SetString(PyExc_TypeError, "payloads must be a list or tuple of bytes");
        return NULL;
    }
    Py_ssize_t n = PySequence_Fast_GET_SIZE(list);
    PyObject **payloads = PySequence_Fast_ITEMS(list);
    if (n == 0) {
        PyErr_SetString(PyExc_ValueError, "no records: nothing to send ahead of");
        return NULL;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        if (!PyBytes_CheckExact(payloads[i])) {
            PyErr_SetString(PyExc_TypeError, "every payload must be bytes");
            return NULL;
        }
    }
    PyObject *data = args[6];
    if (!PyBytes_CheckExact(data) || PyBytes_GET_SIZE(data) == 0) {
        PyErr_SetString(PyExc_TypeError, "data must be non-empty bytes");
        return NULL;
    }
    int64_t small[8];
    int64_t *seqs = n <= 8 ? small : PyMem_Malloc((size_t)n * sizeof *seqs);
    PyObject *held_small[8];
    PyObject **held = n <= 8 ? held_small : PyMem_Malloc((size_t)n * sizeof *held);
    if (!seqs || !held) {
        if (seqs != small)
            PyMem_Free(seqs);
        if (held != held_small)
            PyMem_Free(held);
        return PyErr_NoMemory();
    }
    /* another thread may change the list while the GIL is released: the payloads are held here */
    for (Py_ssize_t i = 0; i < n; i++) {
        held[i] = payloads[i];
        Py_INCREF(held[i]);
    }
    payloads = held;
    append_fn *fn = reserve ? self->reserve_fn : self->base.fn;
    append_fn *try_fn = reserve ? self->reserve_try_fn : self->base.try_fn;
    int64_t status = 0;
    Py_ssize_t done = 0;
    if (self->base.keep_gil)   /* the Appender's rule: the GIL is kept only while nothing waits */
        done = append_all(self, try_fn ? try_fn : fn, (uint32_t)rtype, payloads, n, (uint32_t)source,
                          (uint32_t)state, seqs, &status);
    if (done < n && status == 0) {
        Py_BEGIN_ALLOW_THREADS
        done += append_all(self, fn, (uint32_t)rtype, payloads + done, n - done, (uint32_t)source,
                           (uint32_t)state, seqs + done, &status);
        Py_END_ALLOW_THREADS
    }
    int err = 0;
    if (status == 0) {
        self->send_entered_ns = clock_ns(CLOCK_MONOTONIC);
        err = send_all((int)fd, PyBytes_AS_STRING(data), PyBytes_GET_SIZE(data));
    }
    for (Py_ssize_t i = 0; i < n; i++)
        Py_DECREF(held[i]);
    if (held != held_small)
        PyMem_Free(held);
    PyObject *result = NULL;
    PyObject *out = err < 0 ? NULL : PyTuple_New(done);
    if (out) {
        for (Py_ssize_t i = 0; i < done; i++) {
            PyObject *seq = PyLong_FromLongLong(seqs[i]);
            if (!seq) {
                Py_CLEAR(out);
                break;
            }
            PyTuple_SET_ITEM(out, i, seq);
        }
    }
    if (out)
        result = Py_BuildValue("(NLi)", out, (long long)status, err);
    if (seqs != small)
        PyMem_Free(seqs);
    return result;
}

static PyObject *append_send_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    unsigned long long append, append_reserve, w, try_append = 0, try_reserve = 0;
    int keep_gil;
    if (!PyArg_ParseTuple(args, "KKKp|KK:AppendSend", &append, &append_reserve, &w, &keep_gil, &try_append,
                          &try_reserve))
        return NULL;
    if (!append || !append_reserve || !w) {
        PyErr_SetString(PyExc_ValueError, "AppendSend needs both append functions' and the writer's addresses");
        return NULL;
    }
    AppendSend *self = (AppendSend *)type->tp_alloc(type, 0);
    if (!self)
        return NULL;
    self->base.vectorcall = append_send_call;
    self->base.fn = (append_fn *)(uintptr_t)append;
    self->base.w = (mmj_writer *)(uintptr_t)w;
    self->base.keep_gil = keep_gil;
    self->reserve_fn = (append_fn *)(uintptr_t)append_reserve;
    self->base.try_fn = (append_fn *)(uintptr_t)try_append;
    self->reserve_try_fn = (append_fn *)(uintptr_t)try_reserve;
    return (PyObject *)self;
}

static PyObject *appender_detach(PyObject *self_obj, PyObject *unused)
{
    ((Appender *)self_obj)->w = NULL;
    Py_RETURN_NONE;
}

static PyObject *appender_set_keep_gil(PyObject *self_obj, PyObject *flag)
{
    int keep = PyObject_IsTrue(flag);
    if (keep < 0)
        return NULL;
    ((Appender *)self_obj)->keep_gil = keep;
    Py_RETURN_NONE;
}

static PyObject *appender_get_keep_gil(PyObject *self_obj, void *unused)
{
    return PyBool_FromLong(((Appender *)self_obj)->keep_gil);
}

static PyMethodDef appender_methods[] = {
    {"detach", appender_detach, METH_NOARGS, "Forget the writer: later calls return MMJ_E_CLOSED."},
    {"set_keep_gil", appender_set_keep_gil, METH_O,
     "Keep the GIL across the append (True) or release it (False)."},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef appender_getset[] = {
    {"keep_gil", appender_get_keep_gil, NULL, "whether the GIL is kept across the append", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

/* a vectorcall type of this module with the Appender's methods (an AppendSend begins with an
 * Appender, so its vectorcall slot is at the same offset) */
#define FAST_TYPE(NAME, SIZE, NEW, GETSET, DOC) {                                   \
    PyVarObject_HEAD_INIT(NULL, 0)                                                  \
    .tp_name = "journal._fastappend." NAME,                                         \
    .tp_basicsize = SIZE,                                                           \
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_VECTORCALL,                    \
    .tp_doc = DOC,                                                                  \
    .tp_new = NEW,                                                                  \
    .tp_call = PyVectorcall_Call,                                                   \
    .tp_vectorcall_offset = offsetof(Appender, vectorcall),                         \
    .tp_methods = appender_methods,                                                 \
    .tp_getset = GETSET,                                                            \
}

static PyTypeObject AppenderType = FAST_TYPE(
    "Appender", sizeof(Appender), appender_new, appender_getset,
    "Appender(function address, writer address, keep_gil[, non-blocking variant's address]): call with "
    "(rtype, payload, ts_ns, ts_source, clock_state); returns the C function's result.");

static PyObject *append_send_get_entered(PyObject *self_obj, void *unused)
{
    return PyLong_FromLongLong(((AppendSend *)self_obj)->send_entered_ns);
}

static PyGetSetDef append_send_getset[] = {
    {"keep_gil", appender_get_keep_gil, NULL, "whether the GIL is kept across the appends", NULL},
    {"send_entered_ns", append_send_get_entered, NULL,
     "CLOCK_MONOTONIC ns just before the last call's first send() (0: none yet)", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyTypeObject AppendSendType = FAST_TYPE(
    "AppendSend", sizeof(AppendSend), append_send_new, append_send_getset,
    "AppendSend(append address, append_reserve address, writer address, keep_gil[, their non-blocking "
    "variants' addresses]): call with "
    "(rtype, payloads, ts_source, clock_state, reserve, fd, data); returns (sequences appended, "
    "0 or the refused append's status, 0 or the send's errno). Nothing is sent unless every "
    "payload was appended.");

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "journal._fastappend",
    .m_doc = "The lean Python entry points of journal appends (Appender; AppendSend: append, then send).",
    .m_size = -1,
};

PyMODINIT_FUNC PyInit__fastappend(void)
{
    if (PyType_Ready(&AppenderType) < 0 || PyType_Ready(&AppendSendType) < 0)
        return NULL;
    PyObject *m = PyModule_Create(&module);
    if (!m)
        return NULL;
    Py_INCREF(&AppenderType);
    Py_INCREF(&AppendSendType);
    if (PyModule_AddObject(m, "Appender", (PyObject *)&AppenderType) < 0 ||
        PyModule_AddObject(m, "AppendSend", (PyObject *)&AppendSendType) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
