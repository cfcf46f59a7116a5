/* Shared declarations of framewire._speedups, the optional C accelerator (see module.c). */

#ifndef FRAMEWIRE_SPEEDUPS_H
#define FRAMEWIRE_SPEEDUPS_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>

/* mask.c */
void fw_xor_with_mask(const unsigned char *input, unsigned char *output, Py_ssize_t length,
                      const unsigned char *mask);
PyObject *fw_apply_mask(PyObject *module, PyObject *const *args, Py_ssize_t nargs,
                        PyObject *kwnames);
extern const char fw_apply_mask_doc[];

/* frames.c: fw_whole_frames() appends (payload, is_text, True) to the list out for each whole
 * simple frame at the start of bytes[:end] and returns the bytes they took, or -1 on error */
Py_ssize_t fw_whole_frames(const unsigned char *bytes, Py_ssize_t end, int masked,
                           Py_ssize_t max_size, PyObject *out);
PyObject *fw_parse_whole_frames(PyObject *module, PyObject *const *args, Py_ssize_t nargs);
extern const char fw_parse_whole_frames_doc[];

/* field_lines.c (fw_field_lines_init fills its character tables, from the module's exec) */
void fw_field_lines_init(void);
PyObject *fw_parse_field_lines(PyObject *module, PyObject *const *args, Py_ssize_t nargs);
extern const char fw_parse_field_lines_doc[];
PyObject *fw_encode_fields(PyObject *module, PyObject *fields);
extern const char fw_encode_fields_doc[];
/* Each of ``count`` arguments as a Py_ssize_t into values: 0, or -1 with an exception set. */
int fw_ssize_args(PyObject *const *args, int count, Py_ssize_t *values);
/* The field lines of data[start:end] as new references *fields (list of (name, value)) and
 * *index ({lower-case name: [values]}): 1, or 0 when one is malformed or over a limit, or -1
 * with an exception set. */
int fw_parse_fields(const unsigned char *data, Py_ssize_t start, Py_ssize_t end, Py_ssize_t max_line,
                    Py_ssize_t max_fields, PyObject **fields, PyObject **index);

/* upgrade.c */
PyObject *fw_parse_upgrade_request(PyObject *module, PyObject *const *args, Py_ssize_t nargs);
extern const char fw_parse_upgrade_request_doc[];

/* payload_buffer.c, wakeup.c, inbox.c */
extern PyTypeObject fw_PayloadBufferType;
extern PyTypeObject fw_WakeupType;
extern PyTypeObject fw_InboxType;
#ifdef __linux__
extern PyTypeObject fw_PollerType;       /* poller.c */
extern PyTypeObject fw_DirectWriterType; /* direct_writer.c */
extern PyTypeObject fw_CompletedType;
extern PyObject *fw_sent;                     /* SENT, the finished coroutine (module.c) */
extern PyTypeObject fw_WebSocketMethodsType; /* websocket_methods.c */

/* The objects of one TLS connection that asyncio's SSLProtocol made (aio/asyncio_internals.py,
 * tls_parts()): a DirectWriter with them encrypts what it sends, and the Poller decrypts what
 * it reads for it (tls_link.c). NULL members: plain TCP. */
typedef struct {
    PyObject *ssl_object;    /* ssl's C SSL object: read(n, buffer), write(data), pending() */
    PyObject *incoming;      /* the MemoryBIO the peer's records are written into */
    PyObject *outgoing;      /* the MemoryBIO our records are read from */
    PyObject *send_outgoing; /* sends what is in outgoing, as asyncio's SSLProtocol does */
    PyObject *plain;         /* the TCP transport under it: what is left of a record */
    /* Bound methods of the above, looked up once: each record costs a few calls. */
    PyObject *decrypt;       /* ssl_object.read */
    PyObject *encrypt;       /* ssl_object.write */
    PyObject *feed;          /* incoming.write */
    PyObject *take_records;  /* outgoing.read */
} fw_tls_parts;

typedef struct {
    PyObject_HEAD
    PyObject *transport; /* the transport the application writes to (the TLS one for TLS) */
    int fd;
    int maybe_queued; /* the transports may hold unsent bytes: ask them before sending directly */
    int stopped;
    fw_tls_parts tls;
} fw_DirectWriterObject;

/* tls_link.c */
int fw_tls_parts_set(fw_tls_parts *tls, PyObject *parts);
void fw_tls_parts_clear(fw_tls_parts *tls);
int fw_tls_parts_traverse(fw_tls_parts *tls, visitproc visit, void *arg);
/* 1 when nothing waits in the TLS transport or under it, 0 when something may, -1 on error. */
int fw_tls_nothing_queued(fw_DirectWriterObject *writer);
/* Encrypt data[:length] and send it (the writer checked that nothing is queued); `data` is the
 * object behind it, or NULL (then a copy is made if the TLS transport must take it). */
PyObject *fw_tls_send(fw_DirectWriterObject *writer, const char *bytes, Py_ssize_t length,
                      PyObject *data);
/* Hand `length` received bytes of records to the TLS object: 0, or -1 with an exception set. */
int fw_tls_feed(fw_DirectWriterObject *writer, const char *bytes, Py_ssize_t length);
/* Decrypt into out[:capacity] what the records fed so far hold: the number of bytes (capacity
 * when more may follow), or -1 with an exception set; *closed is set at the peer's close_notify.
 * out_view is a writable memoryview of out[:capacity], and out_capacity the int capacity. */
Py_ssize_t fw_tls_decrypt(fw_DirectWriterObject *writer, char *out, Py_ssize_t capacity,
                          PyObject *out_view, PyObject *out_capacity, int *closed);
/* 1 when decrypted bytes wait without a new read (after a pause, or at the takeover). */
int fw_tls_pending(fw_DirectWriterObject *writer);
/* Send the records reading produced (a TLS 1.3 key update answer): 0, or -1. */
int fw_tls_flush(fw_DirectWriterObject *writer);
#endif

/* connection_flags.c: a fast-path flag of a framewire.sansio.connection.Connection, read from
 * the slot use_connection_flags() was handed: 1 or 0 (0 when ``connection`` is not one) */
enum fw_connection_flag { FW_FRAME_NOW_OK, FW_WHOLE_FRAMES_OK };
int fw_connection_flag(PyObject *connection, enum fw_connection_flag flag);
PyObject *fw_use_connection_flags(PyObject *module, PyObject *const *args, Py_ssize_t nargs);
extern const char fw_use_connection_flags_doc[];

/* inbox.c, for next_message.c: the Inbox's queue and its `receiving` flag */
PyObject *fw_inbox_next_message(PyObject *inbox);
PyObject *fw_inbox_wait_if_empty(PyObject *inbox, PyObject *loop);
int fw_inbox_receiving(PyObject *inbox);
/* Inbox.take_messages(messages, wake): queue a list of whole messages (and empty the list) */
PyObject *fw_inbox_take_messages(PyObject *inbox, PyObject *messages, int wake);
void fw_inbox_set_receiving(PyObject *inbox, int receiving);

/* next_message.c: the awaitable Inbox.anext() returns */
extern PyTypeObject fw_NextMessageType;
PyObject *fw_next_message_new(PyObject *inbox, PyObject *websocket, PyObject *loop);
/* throw(exception[, value[, traceback]]) of an awaitable that has nothing to unwind: raise it */
PyObject *fw_raise_thrown(PyObject *const *args, Py_ssize_t nargs);

/* wakeup.c: Wakeup.resume_now() and resume_soon(), for the Inbox (its waiters are Wakeups) */
PyObject *fw_wakeup_resume_now(PyObject *wakeup, PyObject *unused);
PyObject *fw_wakeup_resume_soon(PyObject *wakeup, PyObject *unused);
PyObject *fw_wakeup_new(PyObject *loop);
/* use_running_tasks(tasks): the loop -> running task dict that asyncio.current_task() reads */
PyObject *fw_use_running_tasks(PyObject *module, PyObject *tasks);
extern const char fw_use_running_tasks_doc[];

#endif
