// gcs-xml-front: fake-gcs-server (as a library) behind a small front that adds the
// GCS XML-API *write* requests object_store sends and fake-gcs-server lacks.
//
// Why: fake-gcs-server routes a plain `PUT /<bucket>/<object>` (an XML-API upload)
// to its JSON upload handler, which answers 400 "invalid uploadType" unless the
// request carries `uploadType=` or a signed-URL query; XML multipart uploads
// (`?uploads`, `?partNumber=&uploadId=`) are not routed at all. object_store's GCS
// client uses exactly those. Upstream pull requests adding the XML API were not
// merged, and no registry here serves a fork.
//
// What is a TEST DOUBLE here: only the four write requests below (simple upload
// with the `x-goog-if-generation-match: 0` precondition, and the multipart
// initiate / part / complete / abort). Every other request -- GET, HEAD, ranged
// reads, the XML list, DELETE, the JSON API -- is served by fake-gcs-server's own
// handler, and every object lives in fake-gcs-server's storage.
package main

import (
	"crypto/md5"
	"encoding/hex"
	"encoding/xml"
	"flag"
	"fmt"
	"io"
	"log"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"

	"github.com/fsouza/fake-gcs-server/fakestorage"
)

type multipart struct {
	bucket, name string
	parts        map[int][]byte
}

type front struct {
	gcs     *fakestorage.Server
	backend http.Handler
	mu      sync.Mutex // one writer at a time: preconditions are check-then-create
	uploads map[string]*multipart
	nextID  int
}

func main() {
	host := flag.String("host", "127.0.0.1", "address to listen on")
	port := flag.Uint("port", 4443, "port to listen on")
	buckets := flag.String("buckets", "", "comma-separated buckets to create at start")
	flag.Parse()
	addr := fmt.Sprintf("%s:%d", *host, *port)
	gcs, err := fakestorage.NewServerWithOptions(fakestorage.Options{
		NoListener: true,
		Scheme:     "http",
		Host:       *host,
		Port:       uint16(*port),
		// XML-API routes match only requests whose Host is the public host.
		PublicHost: addr,
		Writer:     os.Stderr,
	})
	if err != nil {
		log.Fatal(err)
	}
	for _, b := range strings.Split(*buckets, ",") {
		if b != "" {
			gcs.CreateBucketWithOpts(fakestorage.CreateBucketOpts{Name: b})
		}
	}
	f := &front{gcs: gcs, backend: gcs.HTTPHandler(), uploads: map[string]*multipart{}}
	log.Printf("gcs-xml-front listening on http://%s", addr)
	log.Fatal(http.ListenAndServe(addr, f))
}

// splitPath turns "/bucket/some/object" into its bucket and object name.
func splitPath(path string) (string, string, bool) {
	bucket, name, ok := strings.Cut(strings.TrimPrefix(path, "/"), "/")
	return bucket, name, ok && bucket != "" && name != ""
}

func (f *front) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	bucket, name, isObject := splitPath(r.URL.Path)
	xmlWrite := isObject && q.Get("uploadType") == "" && q.Get("X-Goog-Algorithm") == ""
	switch {
	case xmlWrite && r.Method == http.MethodPost && q.Has("uploads"):
		f.initiate(w, bucket, name)
	case xmlWrite && r.Method == http.MethodPut && q.Has("uploadId"):
		f.putPart(w, r, q)
	case xmlWrite && r.Method == http.MethodPost && q.Has("uploadId"):
		f.complete(w, r, q.Get("uploadId"))
	case xmlWrite && r.Method == http.MethodDelete && q.Has("uploadId"):
		f.mu.Lock()
		delete(f.uploads, q.Get("uploadId"))
		f.mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	case xmlWrite && r.Method == http.MethodPut && r.Header.Get("x-goog-copy-source") == "":
		f.put(w, r, bucket, name)
	default:
		f.backend.ServeHTTP(w, r)
	}
}

// store creates the object (under f.mu) and answers with its ETag and generation.
func (f *front) store(w http.ResponseWriter, bucket, name, contentType string, body []byte, ifGeneration string) (fakestorage.Object, bool) {
	if ifGeneration != "" {
		old, err := f.gcs.GetObject(bucket, name)
		exists := err == nil
		if (ifGeneration == "0" && exists) || (ifGeneration != "0" && (!exists || strconv.FormatInt(old.Generation, 10) != ifGeneration)) {
			http.Error(w, "<Error><Code>PreconditionFailed</Code></Error>", http.StatusPreconditionFailed)
			return fakestorage.Object{}, false
		}
	}
	if contentType == "" {
		contentType = "application/octet-stream"
	}
	err := f.gcs.CreateObjectStreaming(fakestorage.Object{
		ObjectAttrs: fakestorage.ObjectAttrs{BucketName: bucket, Name: name, ContentType: contentType},
		Content:     body,
	}.StreamingObject())
	if err != nil {
		http.Error(w, err.Error(), http.StatusNotFound)
		return fakestorage.Object{}, false
	}
	obj, err := f.gcs.GetObject(bucket, name)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return fakestorage.Object{}, false
	}
	w.Header().Set("ETag", strconv.Quote(obj.Etag))
	w.Header().Set("x-goog-generation", strconv.FormatInt(obj.Generation, 10))
	return obj, true
}

// readBody reads the whole request body, answering 400 when it cannot.
func readBody(w http.ResponseWriter, r *http.Request) ([]byte, bool) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
	}
	return body, err == nil
}

func (f *front) put(w http.ResponseWriter, r *http.Request, bucket, name string) {
	body, ok := readBody(w, r)
	if !ok {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.store(w, bucket, name, r.Header.Get("Content-Type"), body, r.Header.Get("x-goog-if-generation-match")); ok {
		w.WriteHeader(http.StatusOK)
	}
}

func (f *front) initiate(w http.ResponseWriter, bucket, name string) {
	f.mu.Lock()
	f.nextID++
	id := fmt.Sprintf("upload-%d", f.nextID)
	f.uploads[id] = &multipart{bucket: bucket, name: name, parts: map[int][]byte{}}
	f.mu.Unlock()
	w.Header().Set("Content-Type", "application/xml")
	fmt.Fprintf(w, "<InitiateMultipartUploadResult><Bucket>%s</Bucket><Key>%s</Key><UploadId>%s</UploadId></InitiateMultipartUploadResult>",
		escape(bucket), escape(name), id)
}

func partETag(data []byte) string {
	sum := md5.Sum(data)
	return strconv.Quote(hex.EncodeToString(sum[:]))
}

func (f *front) putPart(w http.ResponseWriter, r *http.Request, q map[string][]string) {
	number, err := strconv.Atoi(first(q["partNumber"]))
	if err != nil || number < 1 {
		http.Error(w, "bad partNumber", http.StatusBadRequest)
		return
	}
	body, ok := readBody(w, r)
	if !ok {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	up, ok := f.uploads[first(q["uploadId"])]
	if !ok {
		http.Error(w, "<Error><Code>NoSuchUpload</Code></Error>", http.StatusNotFound)
		return
	}
	up.parts[number] = body
	w.Header().Set("ETag", partETag(body))
	w.WriteHeader(http.StatusOK)
}

type completeRequest struct {
	Parts []struct {
		ETag       string `xml:"ETag"`
		PartNumber int    `xml:"PartNumber"`
	} `xml:"Part"`
}

func (f *front) complete(w http.ResponseWriter, r *http.Request, id string) {
	var req completeRequest
	if err := xml.NewDecoder(r.Body).Decode(&req); err != nil || len(req.Parts) == 0 {
		http.Error(w, fmt.Sprintf("bad CompleteMultipartUpload body: %v", err), http.StatusBadRequest)
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	up, ok := f.uploads[id]
	if !ok {
		http.Error(w, "<Error><Code>NoSuchUpload</Code></Error>", http.StatusNotFound)
		return
	}
	var whole []byte
	for _, p := range req.Parts {
		data, ok := up.parts[p.PartNumber]
		if !ok || partETag(data) != p.ETag {
			http.Error(w, "<Error><Code>InvalidPart</Code></Error>", http.StatusBadRequest)
			return
		}
		whole = append(whole, data...)
	}
	obj, ok := f.store(w, up.bucket, up.name, "", whole, "")
	if !ok {
		return
	}
	delete(f.uploads, id)
	w.Header().Set("Content-Type", "application/xml")
	fmt.Fprintf(w, "<CompleteMultipartUploadResult><Bucket>%s</Bucket><Key>%s</Key><ETag>%s</ETag></CompleteMultipartUploadResult>",
		escape(up.bucket), escape(up.name), escape(strconv.Quote(obj.Etag)))
}

func first(values []string) string {
	if len(values) == 0 {
		return ""
	}
	return values[0]
}

func escape(s string) string {
	var b strings.Builder
	_ = xml.EscapeText(&b, []byte(s))
	return b.String()
}
