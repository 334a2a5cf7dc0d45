package web

import (
	"bytes"
	"html/template"
	"net/http"
	"strings"
)

type deniedText struct {
	Lang, Title, Heading, Body, Hint string
}

var deniedTexts = map[string]deniedText{
	"en": {
		Lang:    "en",
		Title:   "Link not valid",
		Heading: "This link is not valid any more",
		Body:    "The session may have ended, or you may have been removed from it, or the link was mistyped.",
		Hint:    "Ask your therapist or clinic for a new link.",
	},
	"fr": {
		Lang:    "fr",
		Title:   "Lien non valide",
		Heading: "Ce lien n’est plus valide",
		Body:    "La séance est peut-être terminée, vous en avez peut-être été retiré, ou le lien est incomplet.",
		Hint:    "Demandez un nouveau lien à votre thérapeute ou à votre clinique.",
	},
}

var deniedTemplate = template.Must(template.New("denied").Parse(`<!doctype html>
<html lang="{{(index . 0).Lang}}">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>{{(index . 0).Title}}</title>
<link rel="icon" href="static/icon.svg" type="image/svg+xml">
<link rel="stylesheet" href="static/common.css">
</head>
<body class="page-message">
<main class="message-card" data-testid="denied">
{{range .}}<section lang="{{.Lang}}">
<h1>{{.Heading}}</h1>
<p>{{.Body}}</p>
<p>{{.Hint}}</p>
</section>
{{end}}</main>
</body>
</html>
`))

// DeniedPage returns the page served with HTTP 403 for a wrong, removed or expired key. lang is
// "en" or "fr" (a prefix such as "en-CA" is enough); any other value gives both languages, French first.
func DeniedPage(lang string) []byte {
	var texts []deniedText
	switch l := strings.ToLower(lang); {
	case strings.HasPrefix(l, "en"):
		texts = []deniedText{deniedTexts["en"]}
	case strings.HasPrefix(l, "fr"):
		texts = []deniedText{deniedTexts["fr"]}
	default:
		texts = []deniedText{deniedTexts["fr"], deniedTexts["en"]}
	}
	var buf bytes.Buffer
	if err := deniedTemplate.Execute(&buf, texts); err != nil { // cannot happen: fixed data
		panic(err)
	}
	return buf.Bytes()
}

// PreferredLang picks the page language of a request: the lang= query parameter when it is
// English or French, else the first English or French entry of Accept-Language, else "" (unknown).
func PreferredLang(r *http.Request) string {
	for _, l := range append([]string{r.URL.Query().Get("lang")}, strings.Split(r.Header.Get("Accept-Language"), ",")...) {
		l = strings.ToLower(strings.TrimSpace(l))
		switch {
		case strings.HasPrefix(l, "en"):
			return "en"
		case strings.HasPrefix(l, "fr"):
			return "fr"
		}
	}
	return ""
}

// Denied answers a page link whose key does not open it, or whose session
// is gone: HTTP 403 with the denied page in the request's language. The
// caller's handler chain sets the security headers.
func Denied(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusForbidden)
	w.Write(DeniedPage(PreferredLang(r)))
}

// DeniedStatus answers OpenTera's /status probe for a key that is not (or
// no longer) live: HTTP 403 with OpenTera's error object.
func DeniedStatus(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusForbidden)
	w.Write([]byte(`{"status":"error","error_text":"Invalid or expired key"}` + "\n"))
}
