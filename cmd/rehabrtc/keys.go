package main

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/rehabrtc/rehabrtc/internal/config"
	"github.com/rehabrtc/rehabrtc/internal/session"
)

// apiKeyFile is where the generated API key lives in the data directory.
const apiKeyFile = "api-key"

// apiKeys returns the configured API keys, or the one in the data directory,
// generated (mode 0600) at first start. The log says where, never what.
func apiKeys(cfg *config.Config, log *slog.Logger) ([]string, error) {
	if len(cfg.RehabRTC.APIKeys) > 0 {
		return cfg.RehabRTC.APIKeys, nil
	}
	path := filepath.Join(cfg.RehabRTC.DataDir, apiKeyFile)
	key, err := readKeyFile(path)
	if err == nil {
		return []string{key}, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	key = session.NewKey()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, fmt.Errorf("create API key file: %w", err)
	}
	if _, err := f.WriteString(key + "\n"); err != nil {
		f.Close()
		return nil, fmt.Errorf("write API key file: %w", err)
	}
	if err := f.Close(); err != nil {
		return nil, fmt.Errorf("write API key file: %w", err)
	}
	log.Info("generated an API key (read it from the file; the CLI does so by itself)", "file", path)
	return []string{key}, nil
}

func readKeyFile(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	key := strings.TrimSpace(string(b))
	if len(key) < config.MinAPIKeyLen {
		return "", fmt.Errorf("%s: API key shorter than %d characters", path, config.MinAPIKeyLen)
	}
	return key, nil
}
