package lazystore

// Holds reports whether the store holds page no.
func (s *Store) Holds(no uint32) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.pages[no]
	return ok
}
