package serve

import (
	"io"
	"net/http"
	"time"
)

// writeStall is how long a large download may make no progress before
// bainoded drops it; the server's WriteTimeout would otherwise cut every
// download that takes longer as a whole (a role image of many GiB, casper's
// ISO), however fast it is going.
const writeStall = time.Minute

// streamChunk is how much is sent between two deadline extensions.
const streamChunk = 4 << 20

// streaming wraps w so that each chunk written extends the connection's
// write deadline by writeStall.
func streaming(w http.ResponseWriter) http.ResponseWriter {
	return &streamWriter{ResponseWriter: w, rc: http.NewResponseController(w)}
}

type streamWriter struct {
	http.ResponseWriter
	rc *http.ResponseController
}

func (s *streamWriter) extend() { s.rc.SetWriteDeadline(time.Now().Add(writeStall)) }

func (s *streamWriter) Write(p []byte) (int, error) {
	var n int
	for len(p) > 0 {
		s.extend()
		k, err := s.ResponseWriter.Write(p[:min(len(p), streamChunk)])
		n += k
		if err != nil {
			return n, err
		}
		p = p[k:]
	}
	return n, nil
}

// ReadFrom keeps the kernel's sendfile for http.ServeContent's
// io.LimitedReader of an *os.File: it sends that in chunks of the same
// kind.
func (s *streamWriter) ReadFrom(src io.Reader) (int64, error) {
	lr, ok := src.(*io.LimitedReader)
	rf, rok := s.ResponseWriter.(io.ReaderFrom)
	if !ok || !rok {
		return io.Copy(struct{ io.Writer }{s}, src)
	}
	var n int64
	for lr.N > 0 {
		s.extend()
		chunk := &io.LimitedReader{R: lr.R, N: min(lr.N, streamChunk)}
		k, err := rf.ReadFrom(chunk)
		n, lr.N = n+k, lr.N-k
		if err != nil {
			return n, err
		}
		if k == 0 {
			break // the file is shorter than it was
		}
	}
	return n, nil
}

func (s *streamWriter) Unwrap() http.ResponseWriter { return s.ResponseWriter }
