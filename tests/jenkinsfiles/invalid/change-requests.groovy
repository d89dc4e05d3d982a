// expect: 9:20 changeRequest has no attribute `owner`
// expect: 13:20 changeRequest comparator `LIKE` is not EQUALS, GLOB or REGEXP
// expect: 17:20 changeRequest `title:` is not a regular expression
// expect: 21:20 changeRequest takes named attributes only
pipeline {
    agent any
    stages {
        stage('A') {
            when { changeRequest owner: 'ada' }
            steps { echo 'a' }
        }
        stage('B') {
            when { changeRequest target: 'main', comparator: 'LIKE' }
            steps { echo 'b' }
        }
        stage('C') {
            when { changeRequest title: '(unclosed', comparator: 'REGEXP' }
            steps { echo 'c' }
        }
        stage('D') {
            when { changeRequest 'main' }
            steps { echo 'd' }
        }
    }
}
