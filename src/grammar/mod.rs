//! bb's argv grammars. (Owned by the grammar work; placeholder.)
