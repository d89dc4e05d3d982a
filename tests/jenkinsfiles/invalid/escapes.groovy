// expect: 8:17 `deploy token` cannot be a secret's name
// expect: 13:27 unknown escape `\d`
// expect: 14:23 is not a unicode escape
// Groovy's escapes and Jenkins credential ids: what Groovy refuses is refused at its line:col.
pipeline {
    agent any
    environment {
        TOKEN = credentials('deploy token')
    }
    stages {
        stage('A') {
            steps {
                sh "grep '\d+' file"
                echo '\u12'
            }
        }
    }
}
